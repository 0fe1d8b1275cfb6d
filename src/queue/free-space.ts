import { promises as fsp } from "node:fs";
import { errorText, type Logger } from "../core/log.ts";

/** How the file system's free space is read: node:fs statfs, which Bun and Deno both provide. */
export type ReadFreeBytes = (dir: string) => Promise<number>;

const statfsFreeBytes: ReadFreeBytes = async (dir) => {
  const stats = await fsp.statfs(dir);
  return Number(stats.bavail) * Number(stats.bsize);
};

/**
 * The free space of the data directory's file system, measured every few
 * seconds (`measure`, a periodic job), against a reserve
 * (RELAY_MIN_FREE_BYTES): below it the front ends refuse new mail, so that
 * a client does not send a whole message for nothing, and what is left
 * serves the deliveries, whose outcomes must still be written (and which
 * free space as their messages finish). A write that failed for lack of
 * space makes it short at once, until a measurement taken after it; bytes
 * stored meanwhile are counted against the last measurement, so that mail
 * arriving faster than it is measured does not eat the reserve. Each change
 * between taking and refusing mail is logged once.
 */
export class FreeSpace {
  #available: number | undefined;
  /** Writes that failed for lack of space, and how many of them the last measurement was taken after. */
  #ranOut = 0;
  #measuredAfter = 0;
  #refusing = false;

  constructor(
    private readonly dir: string,
    readonly reserveBytes: number,
    private readonly log: Logger,
    private readonly readFreeBytes: ReadFreeBytes = statfsFreeBytes,
  ) {}

  /** Measure again (a failure leaves what was known). */
  async measure(): Promise<void> {
    const ranOut = this.#ranOut;
    this.#available = await this.readFreeBytes(this.dir);
    this.#measuredAfter = ranOut;
    this.#noteChange();
  }

  /** A write failed for lack of space: no room until the next measurement. */
  ranOut(error: unknown): void {
    this.#ranOut++;
    this.#noteChange(error);
  }

  /** A message of `bytes` was stored: less room, until the next measurement says how much. */
  used(bytes: number): void {
    if (this.#available === undefined) return;
    this.#available -= bytes;
    this.#noteChange();
  }

  /** Whether a message of `bytes` fits without going below the reserve, as far as is known. */
  hasRoom(bytes = 0): boolean {
    if (this.#ranOut > this.#measuredAfter) return false;
    return this.#available === undefined || this.#available - bytes >= this.reserveBytes;
  }

  #noteChange(error?: unknown): void {
    const refusing = !this.hasRoom();
    if (refusing === this.#refusing) return;
    this.#refusing = refusing;
    const fields = {
      dir: this.dir,
      available_bytes: this.#available,
      min_free_bytes: this.reserveBytes,
      ...(error === undefined ? {} : { error: errorText(error) }),
    };
    if (refusing) {
      this.log("warn", "the data directory's file system is full: new mail is refused until space returns", fields);
    } else this.log("info", "the data directory's file system has room again: new mail is taken", fields);
  }
}
