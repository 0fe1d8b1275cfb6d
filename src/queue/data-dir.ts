import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../core/log.ts";
import type { FileLock } from "../platform/file-lock.ts";
import { makePrivateDir } from "../platform/private-dir.ts";
import type { Runtime } from "../platform/runtime.ts";

/** Tightened paths named in the log line; the rest are counted. */
const NAMED_PATHS = 10;

/**
 * RELAY_DATA_DIR holds secrets (DKIM private keys in relay.db and its WAL,
 * password and API key hashes, the TLS private key, message bodies in the
 * spool): it is made 0700, and whatever in it group or others could reach
 * is made private, with a warning. A directory owned by another user (or
 * holding a file that is) stops the start: the relay could not keep what
 * it writes there from that user.
 */
export function secureDataDir(dataDir: string, log: Logger): void {
  const { created, tightened } = makePrivateDir(dataDir, "RELAY_DATA_DIR");
  if (created) log("info", "data directory created", { dir: dataDir });
  if (tightened.length > 0) {
    log("warn", "data directory was open to other users: made private (directories 0700, files 0600)", {
      dir: dataDir,
      tightened: tightened.slice(0, NAMED_PATHS),
      ...(tightened.length > NAMED_PATHS ? { more: tightened.length - NAMED_PATHS } : {}),
    });
  }
}

/** The lock file of `relay serve`: held while it runs, the holder's pid inside. */
function lockFilePath(dataDir: string): string {
  return join(dataDir, "relay.lock");
}

/**
 * One relay per data directory: two would collect the same spool and
 * deliver the same queue. The lock is released by the kernel when the
 * process ends, so a crash or kill -9 never leaves a stale one. Commands
 * that only read or write rows (users, keys, domains) take no lock.
 */
export async function lockDataDir(dataDir: string, runtime: Runtime): Promise<FileLock> {
  const path = lockFilePath(dataDir);
  const lock = await runtime.tryLockFile(path, `${process.pid}\n`);
  if (lock) return lock;
  const pid = holderPid(path);
  throw new Error(
    `another relay (${
      pid === undefined ? "pid unknown" : `pid ${pid}`
    }) is already serving RELAY_DATA_DIR ${dataDir} ` +
      `(it holds ${path}); stop it first, or give this one its own RELAY_DATA_DIR`,
  );
}

/** The pid the lock's holder wrote; undefined in the instant between its lock and its write. */
function holderPid(path: string): number | undefined {
  const text = readFileSync(path, "utf8").trim();
  return /^\d+$/.test(text) ? Number(text) : undefined;
}
