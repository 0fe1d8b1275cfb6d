/**
 * Codes of a write refused for lack of space: the spool's (ENOSPC, and
 * EDQUOT for a quota) from node:fs, and SQLite's SQLITE_FULL ("database or
 * disk is full"), which the database worker passes on as the error's code.
 */
const STORAGE_FULL_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);

/** Whether a write failed because the data directory's file system is full (not a fault of the relay). */
export function isStorageFull(error: unknown): boolean {
  return STORAGE_FULL_CODES.has(String((error as { code?: unknown } | undefined)?.code));
}
