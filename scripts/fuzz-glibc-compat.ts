/**
 * Lets Jazzer.js's prebuilt libFuzzer addon load on an older glibc. The
 * addon in the npm package (@jazzer.js/fuzzer 4.0) is built against glibc
 * 2.38 and GCC 13's libstdc++, yet needs only three symbols from them:
 * __isoc23_strtol and __isoc23_strtoul (C23 strtol, glibc 2.38) and
 * std::ios_base_library_init (GLIBCXX_3.4.32). On an older system (Debian 12:
 * glibc 2.36, GCC 12) this builds, once, into node_modules/.cache:
 * - a copy of the addon whose two version needs name versions the system has
 *   (GLIBC_2.2.5, GLIBCXX_3.4.20), its bytes otherwise untouched;
 * - a small library (g++) with the three symbols, for LD_PRELOAD;
 * - a --require preload that makes Node load the copy instead of the addon.
 * node_modules stays as npm installed it.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const ADDON = join(ROOT, "node_modules/@jazzer.js/fuzzer/prebuilds", `fuzzer-${process.platform}-${process.arch}.node`);
const CACHE = join(ROOT, "node_modules/.cache/relay-fuzz-compat");

/** Version needs renamed to ones an older system has; the symbols behind them come from the shim. */
const RENAMED: Readonly<Record<string, string>> = { "GLIBC_2.38": "GLIBC_2.2.5", "GLIBCXX_3.4.32": "GLIBCXX_3.4.20" };

const SHIM = `#include <cstdlib>
#include <ios>
extern "C" long __isoc23_strtol(const char* s, char** end, int base) { return std::strtol(s, end, base); }
extern "C" unsigned long __isoc23_strtoul(const char* s, char** end, int base) { return std::strtoul(s, end, base); }
namespace std { void ios_base_library_init() { static ios_base::Init init; } }
`;

/** The environment node needs to run Jazzer.js here: {} when its addon loads as it is. */
export function jazzerEnvironment(): Record<string, string> {
  const probe = spawnSync("node", ["-e", `require(${JSON.stringify(ADDON)})`], {
    encoding: "utf8",
  });
  if (probe.status === 0) return {};
  if (!/GLIBC_2\.38|GLIBCXX_3\.4\.32/.test(probe.stderr)) {
    throw new Error(`the Jazzer.js addon does not load:\n${probe.stderr}`);
  }
  const addon = join(CACHE, "fuzzer.node");
  const shim = join(CACHE, "shim.so");
  const preload = join(CACHE, "load-compat-addon.cjs");
  if (!existsSync(addon) || !existsSync(shim)) {
    mkdirSync(CACHE, { recursive: true });
    writeFileSync(addon, renameVersionNeeds(readFileSync(ADDON)));
    writeFileSync(join(CACHE, "shim.cc"), SHIM);
    const built = spawnSync("g++", ["-shared", "-fPIC", "-O2", "-o", shim, join(CACHE, "shim.cc")], {
      encoding: "utf8",
    });
    if (built.status !== 0) throw new Error(`building the glibc shim failed (g++ needed):\n${built.stderr}`);
    writeFileSync(
      preload,
      `const original = process.dlopen;\n` +
        `process.dlopen = (module, filename, ...rest) =>\n` +
        `  original(module, filename === ${JSON.stringify(ADDON)} ? ${JSON.stringify(addon)} : filename, ...rest);\n`,
    );
  }
  return { LD_PRELOAD: shim, NODE_OPTIONS: `--require ${preload}` };
}

/** Renames entries of the ELF64 .gnu.version_r section (version needs) per RENAMED, in a copy. */
function renameVersionNeeds(elf: Buffer): Buffer {
  const out = Buffer.from(elf);
  const shoff = Number(out.readBigUInt64LE(0x28));
  const shentsize = out.readUInt16LE(0x3a);
  const shnum = out.readUInt16LE(0x3c);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      type: out.readUInt32LE(at + 4),
      offset: Number(out.readBigUInt64LE(at + 0x18)),
      size: Number(out.readBigUInt64LE(at + 0x20)),
      link: out.readUInt32LE(at + 0x28),
      info: out.readUInt32LE(at + 0x2c),
    };
  };
  const SHT_GNU_VERNEED = 0x6ffffffe;
  const needs = Array.from({ length: shnum }, (_, i) => section(i)).find((s) => s.type === SHT_GNU_VERNEED);
  if (!needs) throw new Error("the addon has no version needs section");
  const strings = section(needs.link);
  const table = out.subarray(strings.offset, strings.offset + strings.size);
  const nameAt = (offset: number) => table.toString("latin1", offset, table.indexOf(0, offset));
  const offsetOf = (name: string) => {
    const at = table.indexOf(Buffer.from(`${name}\0`, "latin1"));
    if (at < 0) throw new Error(`the addon's string table has no ${name}`);
    return at;
  };
  let need = needs.offset;
  for (let n = 0; n < needs.info; n++) {
    let aux = need + out.readUInt32LE(need + 8);
    for (let a = 0; a < out.readUInt16LE(need + 2); a++) {
      const renamed = RENAMED[nameAt(out.readUInt32LE(aux + 8))];
      if (renamed) {
        out.writeUInt32LE(elfHash(renamed), aux);
        out.writeUInt32LE(offsetOf(renamed), aux + 8);
      }
      aux += out.readUInt32LE(aux + 12);
    }
    need += out.readUInt32LE(need + 12);
  }
  return out;
}

/** The System V ABI's ELF hash, as version entries carry it. */
function elfHash(name: string): number {
  let h = 0;
  for (const c of Buffer.from(name, "latin1")) {
    h = ((h << 4) >>> 0) + c;
    const g = h & 0xf0000000;
    if (g !== 0) h ^= g >>> 24;
    h = (h & ~g) >>> 0;
  }
  return h;
}
