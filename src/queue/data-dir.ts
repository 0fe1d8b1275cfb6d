import type { Config } from "../config/load.ts";
import type { Logger } from "../events/log.ts";
import { makePrivateDir } from "../platform/private-dir.ts";

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
export function secureDataDir(config: Config, log: Logger): void {
  const { created, tightened } = makePrivateDir(config.dataDir, "RELAY_DATA_DIR");
  if (created) log("info", "data directory created", { dir: config.dataDir });
  if (tightened.length > 0) {
    log("warn", "data directory was open to other users: made private (directories 0700, files 0600)", {
      dir: config.dataDir,
      tightened: tightened.slice(0, NAMED_PATHS),
      ...(tightened.length > NAMED_PATHS ? { more: tightened.length - NAMED_PATHS } : {}),
    });
  }
}
