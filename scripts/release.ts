/**
 * Build the release: for each target of scripts/release-targets.ts, the
 * binary `relay-<version>-<target>` (its Bun runtime and libSQL addon
 * embedded), `relay-<version>-<target>.tar.gz` (a folder of that name with
 * `relay`, README.md, LICENSE, relay.service and relay.env.example), and
 * `SHA256SUMS` over all of them (`sha256sum -c SHA256SUMS`). Then the size of
 * each and, for the targets this machine can run, its start-up times.
 *
 *   scripts/release [--out dist/release] [--cache DIR] [--no-measure]
 *
 * npm installs only this machine's Bun runtime and libSQL addon, so the
 * others are fetched with npm itself (`npm pack`, the registry and its
 * settings being npm's) at the exact versions the installed `bun` and
 * `libsql` packages name, checked against package-lock.json's integrity when
 * it lists them, and kept in the cache (default node_modules/.cache/relay-release).
 * Bun then compiles onto the fetched runtime (scripts/build.ts --runtime)
 * instead of downloading one itself.
 *
 * The build date of every binary is SOURCE_DATE_EPOCH when set, else now.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  copyFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { launcherFor, RELEASE_TARGETS, type ReleaseTarget } from "./release-targets.ts";

const root = resolve(import.meta.dir, "..");
const PACKAGING_FILES = ["packaging/relay.service", "packaging/relay.env.example", "README.md", "LICENSE"];

const USAGE = "usage: scripts/release [--out dist/release] [--cache DIR] [--no-measure] (--help: more)";
const opts = (() => {
  try {
    return parseArgs({
      options: {
        out: { type: "string", default: "dist/release" },
        cache: { type: "string", default: "node_modules/.cache/relay-release" },
        "no-measure": { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (error) {
    console.error(`release: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
})();
if (opts.help) {
  console.log(readFileSync(import.meta.path, "utf8").match(/\/\*\*([\s\S]*?)\*\//)![1]!.replace(/^ \* ?/gm, "").trim());
  process.exit(0);
}

function fail(message: string): never {
  console.error(`release: ${message}`);
  process.exit(1);
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const result = spawnSync(command, args, { cwd: options.cwd ?? root, env: options.env, encoding: "utf8" });
  if (result.status !== 0) {
    fail(
      `${command} ${args.join(" ")} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stderr}`,
    );
  }
  return result.stdout;
}

const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8"));
const out = resolve(root, opts.out!);
const cache = resolve(root, opts.cache!);
const version: string = readJson(join(root, "package.json")).version ?? fail('package.json has no "version"');
for (const file of PACKAGING_FILES) if (!existsSync(join(root, file))) fail(`${file} is missing`);
const dirty = spawnSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: root, encoding: "utf8" });
if (dirty.status === 0 && dirty.stdout.trim() !== "") {
  console.warn("release: warning: tracked files have uncommitted changes; the binaries say commit <sha>-dirty");
}

// ---- the runtimes and addons, through npm ---------------------------------------

/** The exact version of `name` that the installed `owner` package lists among its optional dependencies. */
function wantedVersion(owner: "bun" | "libsql", name: string): string {
  const pkg = readJson(join(root, "node_modules", owner, "package.json"));
  const pinned = pkg.optionalDependencies?.[name];
  // Bun's baseline builds are published at Bun's version but not listed by the `bun` package.
  if (pinned === undefined && owner === "bun") return pkg.version;
  return pinned ?? fail(`the installed ${owner} ${pkg.version} does not name ${name}`);
}

/** package-lock.json's integrity for `name` at `version`, when it records that package. */
function lockedIntegrity(name: string, version: string): string | undefined {
  const entry = readJson(join(root, "package-lock.json")).packages?.[`node_modules/${name}`];
  return entry?.version === version ? entry.integrity : undefined;
}

/** The path of `file` in package `name@version`: node_modules' copy, or the cache's, fetched if need be. */
function packageFile(name: string, version: string, file: string): string {
  const installed = join(root, "node_modules", name);
  if (existsSync(join(installed, file)) && readJson(join(installed, "package.json")).version === version) {
    return join(installed, file);
  }
  const dir = join(cache, `${name.replace("/", "+")}@${version}`);
  const wanted = join(dir, "package", file);
  if (existsSync(wanted)) return wanted;
  // Fetched and unpacked beside, then renamed: an interrupted fetch leaves no half package in the cache.
  const part = `${dir}.part`;
  rmSync(part, { recursive: true, force: true });
  mkdirSync(part, { recursive: true });
  console.log(`release: fetching ${name}@${version} with npm pack`);
  const [packed] = JSON.parse(run("npm", ["pack", `${name}@${version}`, "--json", "--pack-destination", part])) as {
    filename: string;
    integrity: string;
  }[];
  if (!packed) fail(`npm pack ${name}@${version} reported nothing`);
  const locked = lockedIntegrity(name, version);
  if (locked !== undefined && locked !== packed.integrity) {
    fail(`${name}@${version}: npm fetched ${packed.integrity}, package-lock.json says ${locked}`);
  }
  run("tar", ["-xzf", join(part, packed.filename), "-C", part]);
  rmSync(join(part, packed.filename));
  rmSync(dir, { recursive: true, force: true });
  renameSync(part, dir);
  return existsSync(wanted) ? wanted : fail(`${name}@${version} has no ${file}`);
}

// ---- build and pack -----------------------------------------------------------

const buildEpoch = process.env.SOURCE_DATE_EPOCH || String(Math.floor(Date.now() / 1000));
mkdirSync(out, { recursive: true });
for (const name of readdirSync(out)) {
  if (name.startsWith("relay-") || name === "SHA256SUMS") rmSync(join(out, name), { recursive: true, force: true });
}
const staging = mkdtempSync(join(tmpdir(), "relay-release-"));
process.on("exit", () => rmSync(staging, { recursive: true, force: true }));

const artifacts: string[] = [];
for (const target of RELEASE_TARGETS) {
  const runtime = packageFile(target.runtimePackage, wantedVersion("bun", target.runtimePackage), "bin/bun");
  const addon = packageFile(target.addonPackage, wantedVersion("libsql", target.addonPackage), "index.node");
  const base = `relay-${version}-${target.name}`;
  const binary = join(out, base);
  run(process.execPath, [
    join(root, "scripts", "build.ts"),
    `--target=${target.bunTarget}`,
    `--outfile=${binary}`,
    `--runtime=${runtime}`,
    `--addon=${addon}`,
  ], { env: { ...process.env, SOURCE_DATE_EPOCH: buildEpoch } });

  const folder = join(staging, base);
  mkdirSync(folder);
  copyFileSync(binary, join(folder, "relay"));
  for (const file of PACKAGING_FILES) copyFileSync(join(root, file), join(folder, file.replace(/^packaging\//, "")));
  const tarball = join(out, `${base}.tar.gz`);
  run("tar", [
    "--sort=name",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    `--mtime=@${buildEpoch}`,
    "--use-compress-program=gzip -n",
    "-cf",
    `${tarball}.part`,
    "-C",
    staging,
    base,
  ]);
  renameSync(`${tarball}.part`, tarball);
  artifacts.push(base, `${base}.tar.gz`);
  console.log(`release: ${relative(process.cwd(), binary)} and its .tar.gz`);
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
const sums = await Promise.all(artifacts.sort().map(async (name) => `${await sha256(join(out, name))}  ${name}\n`));
await Bun.write(join(out, "SHA256SUMS"), sums.join(""));

// ---- sizes and start-up times ------------------------------------------------------

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as { port: number };
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

/** Milliseconds from starting `relay serve` in an empty directory to its SMTP banner. */
async function timeToBanner(argv: string[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "relay-release-start-"));
  const [smtp, http] = [await freePort(), await freePort()];
  const started = performance.now();
  const child = spawn(argv[0]!, [...argv.slice(1), "serve"], {
    cwd: dir,
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      PATH: process.env.PATH,
      RELAY_DATA_DIR: join(dir, "data"),
      RELAY_SMTP_LISTEN: `127.0.0.1:${smtp}`,
      RELAY_HTTP_LISTEN: `127.0.0.1:${http}`,
      RELAY_HOSTNAME: "release.test",
      RELAY_ADMIN_TOKEN: randomBytes(24).toString("base64url"),
      RELAY_LOG_LEVEL: "error",
    },
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  let exited = false;
  child.once("exit", () => (exited = true));
  try {
    while (!exited) {
      const banner = await new Promise<string | undefined>((done) => {
        const socket = connect({ host: "127.0.0.1", port: smtp });
        let text = "";
        socket.setEncoding("utf8");
        socket.on("data", (s: string) => {
          text += s;
          if (text.includes("\r\n")) {
            socket.destroy();
            done(text);
          }
        });
        socket.once("error", () => done(undefined));
        socket.once("close", () => done(text || undefined));
      });
      if (banner?.startsWith("220 ")) return performance.now() - started;
      await sleep(10);
    }
    throw new Error(`relay serve exited before its banner: ${stderr.trim()}`);
  } finally {
    child.kill("SIGTERM");
    await new Promise((ok) => (exited ? ok(undefined) : child.once("exit", ok)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Start-up times of `target`'s binary here, or why it cannot run here. */
async function startupTimes(target: ReleaseTarget, binary: string): Promise<string> {
  const launcher = launcherFor(target);
  if (typeof launcher === "string") return `not run here: ${launcher}`;
  const argv = [...launcher, binary];
  const empty = mkdtempSync(join(tmpdir(), "relay-release-version-"));
  try {
    // Emulated runs take seconds each and measure the emulator more than the binary: one is enough.
    const runs = launcher.length > 0 ? 1 : 5;
    const versions: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const result = spawnSync(argv[0]!, [...argv.slice(1), "version"], { cwd: empty, encoding: "utf8" });
      if (result.status !== 0) {
        return `does not run here: ${(result.stderr || result.error?.message || "").trim().split("\n")[0]}`;
      }
      versions.push(performance.now() - started);
    }
    const banners: number[] = [];
    for (let i = 0; i < Math.max(1, runs - 2); i++) banners.push(await timeToBanner(argv));
    const how = launcher.length > 0 ? ` (under ${launcher[0]}: emulated, not the real CPU's)` : "";
    return `version ${Math.round(median(versions))} ms, SMTP banner ${Math.round(median(banners))} ms${how}`;
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}

console.log(`\nrelease: ${relative(process.cwd(), out) || "."} (relay ${version})`);
for (const target of RELEASE_TARGETS) {
  const binary = join(out, `relay-${version}-${target.name}`);
  const sizes = `${mb(statSync(binary).size)}, .tar.gz ${mb(statSync(`${binary}.tar.gz`).size)}`;
  const times = opts["no-measure"] ? "" : `; ${await startupTimes(target, binary)}`;
  console.log(`  ${target.name.padEnd(20)} ${sizes}${times}`);
}
console.log("  SHA256SUMS           verify with: sha256sum -c SHA256SUMS");
