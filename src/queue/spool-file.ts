import { closeSync, constants, fsyncSync, ftruncateSync, openSync, writevSync } from "node:fs";
import { dirname } from "node:path";

/**
 * One append to a spool segment: the bodies go at `offset` of the file at
 * `path`, which `create` says is new. Made on the main thread (which keeps
 * the bookkeeping), carried out by the database worker just before the
 * transaction that refers to it.
 */
export interface SpoolWrite {
  readonly path: string;
  readonly offset: number;
  readonly parts: readonly Uint8Array[];
  readonly create: boolean;
}

/** O_DSYNC: each write returns once its data (and the file's new size) is on disk. */
const APPEND_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_DSYNC;
const CREATE_FLAGS = APPEND_FLAGS | constants.O_EXCL;

/**
 * Synchronous appends for the database worker, which blocks anyway while it
 * commits. It keeps the segment it writes to open; a failed write cuts the
 * file back to where the write began (what it put there is never referred
 * to, and on a full disk those bytes are all the room there was) and closes
 * it, so the next write opens the file afresh.
 */
export class SpoolFileWriter {
  #open: { path: string; fd: number } | undefined;

  write(write: SpoolWrite): void {
    const fd = this.#fd(write);
    try {
      let parts = write.parts.filter((part) => part.byteLength > 0);
      let at = write.offset;
      while (parts.length > 0) {
        const written = writevSync(fd, parts as Uint8Array[], at);
        at += written;
        parts = remainder(parts, written);
      }
    } catch (error) {
      try {
        ftruncateSync(fd, write.offset);
      } catch {
        // The bytes stay until the spool collector removes the segment, which no row refers to past the offset.
      }
      this.close();
      throw error;
    }
  }

  close(): void {
    if (this.#open) closeSync(this.#open.fd);
    this.#open = undefined;
  }

  #fd(write: SpoolWrite): number {
    if (this.#open?.path === write.path) return this.#open.fd;
    this.close();
    const fd = openSync(write.path, write.create ? CREATE_FLAGS : APPEND_FLAGS, 0o600);
    this.#open = { path: write.path, fd };
    if (write.create) syncDirectorySync(dirname(write.path)); // the new file's name must survive a crash too
    return fd;
  }
}

/** What is left to write after `written` bytes (a regular file may take less than asked; a full disk says so on the next call). */
function remainder(parts: readonly Uint8Array[], written: number): Uint8Array[] {
  if (written === 0) throw new Error("spool write made no progress");
  const rest = [...parts];
  let skip = written;
  while (rest.length > 0 && skip >= rest[0]!.byteLength) skip -= rest.shift()!.byteLength;
  if (rest.length > 0 && skip > 0) rest[0] = rest[0]!.subarray(skip);
  return rest;
}

function syncDirectorySync(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
