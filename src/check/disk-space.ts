import { statfsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type CheckResult, errorReason, fail, pass, warn } from "./result.ts";

const MIB = 1024 * 1024;
/** Below either, the queue and its database soon cannot grow: a failure. */
const FAIL_BYTES = 256 * MIB;
const FAIL_SHARE = 0.02;
/** Below either, a backlog could fill the disk: a warning. */
const WARN_BYTES = 2048 * MIB;
const WARN_SHARE = 0.1;

/** Free space on the file system of RELAY_DATA_DIR (or of its nearest existing parent). */
export function checkDiskSpace(dataDir: string): CheckResult {
  const what = `free space for ${dataDir}`;
  let available: number;
  let total: number;
  try {
    const stats = statfsSync(existingAncestor(resolve(dataDir)));
    available = Number(stats.bavail) * Number(stats.bsize);
    total = Number(stats.blocks) * Number(stats.bsize);
  } catch (error) {
    return warn(what, `cannot tell (${errorReason(error)})`, "check it with df");
  }
  const share = total > 0 ? available / total : 0;
  const detail = `${Math.floor(available / MIB)} MiB available (${(share * 100).toFixed(1)}% of the file system)`;
  const fix = "free some space, or move RELAY_DATA_DIR to a larger disk";
  if (available < FAIL_BYTES || share < FAIL_SHARE) return fail(what, `${detail}: nearly full`, fix);
  if (available < WARN_BYTES || share < WARN_SHARE) return warn(what, `${detail}: little left`, fix);
  return pass(what, detail);
}

function existingAncestor(path: string): string {
  for (let at = path;; at = dirname(at)) {
    try {
      statSync(at);
      return at;
    } catch (error) {
      if (!["ENOENT", "ENOTDIR"].includes(errorReason(error)) || at === dirname(at)) throw error;
    }
  }
}
