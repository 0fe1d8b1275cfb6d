import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ARM64_EMULATOR, launcherFor, RELEASE_TARGETS, type ReleaseTarget } from "../../scripts/release-targets.ts";
import { checkoutHead, isCommitOfCheckout } from "../helpers/checkout.ts";
import { NOT_INSTALLED, peerMissing } from "../helpers/peers.ts";
import { repoRoot, runRelay } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld } from "../helpers/world.ts";

// scripts/release's output, built by `npm test` (scripts/test.mjs), which sets RELAY_TEST_RELEASE_DIR.
const releaseDir = process.env.RELAY_TEST_RELEASE_DIR || undefined;
const version: string = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version;
const PACKAGED = ["LICENSE", "README.md", "relay", "relay.env.example", "relay.service"];
/** No node, bun or deno to fall back on: the binary brings everything. */
const isolated = { PATH: "/nonexistent", NODE_PATH: "" };

const [qemu, , arm64Sysroot] = ARM64_EMULATOR;
const MUSL_LOADER = "/lib/ld-musl-x86_64.so.1";
const SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze";
const qemuMissing = peerMissing(qemu!, "qemu-user-static", !existsSync(qemu!) && NOT_INSTALLED);
const arm64LibsMissing = peerMissing(
  `the arm64 libraries in ${arm64Sysroot}`,
  "libc6-arm64-cross libgcc-s1-arm64-cross",
  !(existsSync(`${arm64Sysroot}/lib/ld-linux-aarch64.so.1`) && existsSync(`${arm64Sysroot}/lib/libgcc_s.so.1`)) &&
    NOT_INSTALLED,
);
const muslMissing = peerMissing(MUSL_LOADER, "musl", !existsSync(MUSL_LOADER) && NOT_INSTALLED);
const systemdMissing = peerMissing(SYSTEMD_ANALYZE, "systemd", !existsSync(SYSTEMD_ANALYZE) && NOT_INSTALLED);

const binaryOf = (target: ReleaseTarget) => join(releaseDir!, `relay-${version}-${target.name}`);
const target = (name: string) => RELEASE_TARGETS.find((t) => t.name === name)!;

function run(file: string, args: string[], cwd?: string) {
  const result = spawnSync(file, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  return { code: result.status ?? 128, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

/** `relay version --json` of `target`'s binary, run from an empty directory. */
async function versionOf(target: ReleaseTarget, launcher: readonly string[]) {
  const result = await runRelay(["version", "--json"], {
    binary: binaryOf(target),
    launcher,
    env: isolated,
    timeoutMs: 120_000,
  });
  assert.equal(result.code, 0, result.stderr);
  const info = JSON.parse(result.stdout);
  assert.equal(info.version, version);
  assert.equal(info.target, target.name);
  assert.match(info.build_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(info.runtime, /^bun \d/);
  if (checkoutHead() !== undefined) assert.ok(isCommitOfCheckout(info.commit), `built here: ${info.commit}`);
}

/** The binary, started from an empty directory, relays a message on loopback to the scripted destination. */
async function relaysAMessage(target: ReleaseTarget, launcher: readonly string[]) {
  const world = await startWorld({
    binary: binaryOf(target),
    launcher,
    env: isolated,
    // Under qemu the start takes seconds of emulated JIT warm-up.
    readyTimeoutMs: 120_000,
  });
  try {
    const rcpt = `${target.name}@dest.test`;
    const replies = await sendMail(world.relay.smtpPort, "origin@sender.test", [rcpt], "Subject: release\r\n\r\nx\r\n");
    assert.match(replies.at(-2)!, /^250 /, replies.join("\n"));
    await world.destination.waitFor((m) => m.some((r) => r.recipients.includes(rcpt)), 60_000);
  } finally {
    await world.close();
  }
}

/** The ELF program interpreter of `file` (PT_INTERP), read from its 64-bit little-endian headers. */
function elfInterpreter(file: string): string | undefined {
  const bytes = readFileSync(file);
  assert.equal(bytes.subarray(0, 4).toString("latin1"), "\x7fELF");
  const programHeaders = Number(bytes.readBigUInt64LE(0x20));
  const entrySize = bytes.readUInt16LE(0x36);
  for (let i = 0; i < bytes.readUInt16LE(0x38); i++) {
    const header = programHeaders + i * entrySize;
    if (bytes.readUInt32LE(header) !== 3) continue; // PT_INTERP
    const offset = Number(bytes.readBigUInt64LE(header + 0x08));
    const size = Number(bytes.readBigUInt64LE(header + 0x20));
    return bytes.subarray(offset, offset + size - 1).toString("latin1");
  }
  return undefined;
}

describe("scripts/release", {
  skip: releaseDir ? false : "RELAY_TEST_RELEASE_DIR is not set (npm test runs scripts/release and sets it)",
}, () => {
  const scratch = mkdtempSync(join(tmpdir(), "relay-release-test-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("builds every target, each with its tarball, and SHA256SUMS verifies them all", () => {
    const expected = RELEASE_TARGETS.flatMap((
      t,
    ) => [`relay-${version}-${t.name}`, `relay-${version}-${t.name}.tar.gz`]);
    const listed = readFileSync(join(releaseDir!, "SHA256SUMS"), "utf8").trimEnd().split("\n").map((line) => {
      assert.match(line, /^[0-9a-f]{64} {2}\S+$/, "sha256sum's format");
      return line.slice(66);
    });
    assert.deepEqual(listed.sort(), expected.sort());
    const check = run("sha256sum", ["--check", "--strict", "SHA256SUMS"], releaseDir);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.equal(check.stdout.trim().split("\n").filter((l) => l.endsWith(": OK")).length, expected.length);
    for (const t of RELEASE_TARGETS) assert.ok(statSync(binaryOf(t)).mode & 0o100, `${t.name} is executable`);
  });

  it("packs the binary as relay with README.md, LICENSE, the systemd unit and the env example", () => {
    for (const t of RELEASE_TARGETS) {
      const base = `relay-${version}-${t.name}`;
      const into = join(scratch, t.name);
      rmSync(into, { recursive: true, force: true });
      const unpacked = run("tar", ["-xzf", join(releaseDir!, `${base}.tar.gz`), "-C", scratch]);
      assert.equal(unpacked.code, 0, unpacked.stderr);
      assert.deepEqual(readdirSync(join(scratch, base)).sort(), PACKAGED);
      assert.ok(readFileSync(join(scratch, base, "relay")).equals(readFileSync(binaryOf(t))), "the same binary");
      assert.ok(statSync(join(scratch, base, "relay")).mode & 0o100, "relay is executable in the tarball");
      for (
        const [packed, source] of [
          ["README.md", "README.md"],
          ["LICENSE", "LICENSE"],
          ["relay.service", "packaging/relay.service"],
          ["relay.env.example", "packaging/relay.env.example"],
        ]
      ) {
        assert.equal(readFileSync(join(scratch, base, packed!), "utf8"), readFileSync(join(repoRoot, source!), "utf8"));
      }
      rmSync(join(scratch, base), { recursive: true, force: true });
    }
  });

  it("ships a systemd unit that systemd-analyze verifies, with the binary in place", { skip: systemdMissing }, () => {
    const unit = join(scratch, "relay.service");
    const text = readFileSync(join(repoRoot, "packaging", "relay.service"), "utf8");
    assert.match(text, /^ExecStart=\/usr\/local\/bin\/relay serve$/m);
    // verify checks that ExecStart's program exists: point it at a built binary.
    writeFileSync(
      unit,
      text.replace(/^ExecStart=\/usr\/local\/bin\/relay/m, `ExecStart=${binaryOf(target("linux-x64"))}`),
    );
    const verified = run(SYSTEMD_ANALYZE, ["verify", unit]);
    // Bad settings are only warned about ("ignoring"), with exit 0: no output at all is the pass.
    assert.equal(`${verified.code} ${verified.stdout}${verified.stderr}`.trim(), "0");
  });

  for (const name of ["linux-x64", "linux-x64-baseline"]) {
    it(`${name}: runs from an empty directory and relays a message on loopback`, { timeout: 120_000 }, async () => {
      const launcher = launcherFor(target(name));
      assert.ok(Array.isArray(launcher), `this machine runs ${name}: ${launcher}`);
      await versionOf(target(name), launcher as readonly string[]);
      await relaysAMessage(target(name), launcher as readonly string[]);
    });
  }

  const arm64 = { timeout: 300_000, skip: qemuMissing ?? arm64LibsMissing };
  it("linux-arm64 under qemu-aarch64-static: version, migrate, and a message relayed on loopback", arm64, async () => {
    const t = target("linux-arm64");
    assert.deepEqual(launcherFor(t), ARM64_EMULATOR);
    await versionOf(t, ARM64_EMULATOR);
    const migrated = await runRelay(["migrate"], {
      binary: binaryOf(t),
      launcher: ARM64_EMULATOR,
      env: isolated,
      timeoutMs: 120_000,
    });
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.match(migrated.stdout, /applied 0000_initial, .*0001_/);
    await relaysAMessage(t, ARM64_EMULATOR);
  });

  // Bun's musl build links the C++ runtime dynamically: libstdc++.so.6 and
  // libgcc_s.so.1 built against musl, which Alpine has (apk add libstdc++
  // libgcc) and Debian has not: its musl package is the C library and loader
  // only, and glibc's libstdc++ cannot be loaded by musl (it needs glibc-only
  // symbols such as __libc_single_threaded and _dl_find_object). So here it
  // is shown three other ways: the binary is a musl executable, Debian's musl
  // loader resolves everything it needs except that C++ runtime (a glibc
  // binary fails there for more), and it embeds libSQL's musl addon, not the
  // glibc one.
  it("linux-x64-musl: a musl executable with the musl addon, needing only Alpine's C++ runtime besides musl", {
    skip: muslMissing,
  }, () => {
    const musl = binaryOf(target("linux-x64-musl"));
    assert.equal(elfInterpreter(musl), MUSL_LOADER);
    assert.equal(elfInterpreter(binaryOf(target("linux-x64"))), "/lib64/ld-linux-x86-64.so.2");

    const missingUnderMusl = (binary: string) => {
      const result = run(MUSL_LOADER, [binary, "version"], scratch);
      assert.notEqual(result.code, 0, "it cannot start without a C++ runtime built for musl");
      return new Set([...result.stderr.matchAll(/Error loading shared library (\S+?):/g)].map((m) => m[1]));
    };
    const missing = missingUnderMusl(musl);
    assert.ok(missing.size > 0, "the loader names what it lacks");
    for (const library of missing) assert.match(library!, /^(libstdc\+\+\.so\.6|libgcc_s\.so\.1)$/);
    assert.ok(missingUnderMusl(binaryOf(target("linux-x64"))).has("ld-linux-x86-64.so.2"), "a glibc binary fails more");

    const binary = readFileSync(musl);
    const addon = (pkg: string) => readFileSync(join(repoRoot, "node_modules", pkg, "index.node"));
    assert.notEqual(binary.indexOf(addon("@libsql/linux-x64-musl")), -1, "libSQL's musl addon is embedded");
    assert.equal(binary.indexOf(addon("@libsql/linux-x64-gnu")), -1, "libSQL's glibc addon is not");
  });
});
