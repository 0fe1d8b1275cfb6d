import { accessSync, constants, type Stats, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { scanPrivateDir } from "../platform/private-dir.ts";
import { type CheckResult, errorReason, fail, pass, warn } from "./result.ts";

/** Paths named in a line; the rest are counted. */
const NAMED_PATHS = 3;

/**
 * RELAY_DATA_DIR as serve will take it (src/queue/data-dir.ts): it exists or
 * can be created, it is writable, this user owns it and all in it, and no
 * one else can write there (serve makes a readable one private, but what
 * others could write may already be planted).
 */
export function checkDataDir(dataDir: string): CheckResult {
  const what = `RELAY_DATA_DIR ${dataDir}`;
  const stat = statOrUndefined(dataDir);
  if (stat === undefined) return creatable(what, dataDir);
  if (!stat.isDirectory()) return fail(what, "is not a directory", "point RELAY_DATA_DIR at a directory");
  const { foreign, open } = scanPrivateDir(dataDir, stat);
  if (foreign !== undefined) {
    const holder = foreign.path === dataDir ? "it" : foreign.path;
    return fail(
      what,
      `${holder} is owned by uid ${foreign.uid}, not by uid ${foreign.owner} that runs this check`,
      `run the relay (and relay check) as its owner, or chown -R ${foreign.owner} ${dataDir}`,
    );
  }
  const named = (list: readonly { path: string; mode: number }[]) =>
    list.slice(0, NAMED_PATHS).map((o) => `${o.path} (${modeText(o.mode)})`).join(", ") +
    (list.length > NAMED_PATHS ? ` and ${list.length - NAMED_PATHS} more` : "");
  const writable = open.filter((o) => (o.mode & 0o022) !== 0);
  if (writable.length > 0) {
    return fail(what, `group or others can write: ${named(writable)}`, `chmod -R go-rwx ${dataDir}`);
  }
  if (!canAccess(dataDir, constants.W_OK | constants.X_OK)) {
    return fail(what, `not writable (${modeText(stat.mode)})`, `chmod u+rwx ${dataDir}`);
  }
  if (open.length > 0) {
    return warn(
      what,
      `group or others can read: ${named(open)}; serve makes it private at start`,
      `chmod -R go-rwx ${dataDir}`,
    );
  }
  return pass(what, `a directory private to uid ${process.getuid?.() ?? "(this user)"}`);
}

/** An absent data directory is fine when serve can make it: the nearest existing parent must let it. */
function creatable(what: string, dataDir: string): CheckResult {
  let parent = dirname(resolve(dataDir));
  let stat = statOrUndefined(parent);
  while (stat === undefined && parent !== dirname(parent)) {
    parent = dirname(parent);
    stat = statOrUndefined(parent);
  }
  if (stat?.isDirectory() && canAccess(parent, constants.W_OK | constants.X_OK)) {
    return pass(what, "does not exist yet; serve creates it (mode 0700)");
  }
  return fail(
    what,
    `does not exist, and cannot be created: ${parent} is not a writable directory`,
    `create ${dataDir} and give it to the relay's user`,
  );
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (error) {
    // ENOTDIR: a file stands where a parent directory should be; the path does not exist either.
    if (["ENOENT", "ENOTDIR"].includes(errorReason(error))) return undefined;
    throw error;
  }
}

function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

function modeText(mode: number): string {
  return `mode ${(mode & 0o777).toString(8).padStart(4, "0")}`;
}
