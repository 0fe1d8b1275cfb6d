import { close, constants, fsync, open, promises as fsp, read, writev } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

/** Where one body lies: its segment file, the offset in it, and its length. */
export interface BodyRef {
  readonly segment: number;
  readonly offset: number;
  readonly length: number;
}

/** Segment files: a zero-padded number, so a listing sorts in the order they were made. */
const SEGMENT_FILE = /^(\d{12})\.bodies$/;
const segmentFile = (segment: number) => `${String(segment).padStart(12, "0")}.bodies`;

/** A segment is closed to new bodies once this full; one body larger than this gets a segment of its own. */
export const SEGMENT_BYTES = 32 * 1024 * 1024;

/** Plain descriptors rather than FileHandles: a FileHandle that is collected unclosed is an error in Bun. */
const openFile = promisify(open);
const closeFile = promisify(close);
const syncFile = promisify(fsync);

function readAt(fd: number, into: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, into, offset, length, position, (error, n) => (error ? reject(error) : resolve(n))));
}

function writeAt(fd: number, parts: Uint8Array[], position: number): Promise<number> {
  return new Promise((resolve, reject) => writev(fd, parts, position, (error, n) => (error ? reject(error) : resolve(n))));
}

/**
 * The spool: message bodies on local disk, beside the queue database rather
 * than in it. SQLite writes a blob twice (into the WAL, then into the
 * database file at checkpoint) and every byte of it passes through the
 * commit that a waiting SMTP client's 250 depends on; here a group of
 * bodies is one append with O_DSYNC (the data is on disk when the write
 * returns), and the database commit that follows carries only rows.
 *
 * Bodies go one after the other into the active segment; a new segment
 * starts when it is full and at every start of the process (bytes a crash
 * left after the last completed write are never appended to). The queue
 * row names (segment, offset, length). A segment is removed once no row
 * refers to it (src/queue/spool-collector.ts decides when).
 *
 * Appends are serialised. Every append must be settled (`settle`) once the
 * database write that refers to it has committed or failed: until then its
 * segment is never removed, because the rows that keep it alive may not be
 * visible yet.
 */
export class BodySpool {
  #active: { segment: number; fd: number; size: number } | undefined;
  #next: number;
  readonly #segments: Set<number>;
  readonly #readers = new Map<number, Promise<number>>();
  readonly #reading = new Map<number, number>();
  readonly #unsettled = new Map<number, number>();
  /** Per segment, the sequence number of its last settled append. */
  readonly #lastSettled = new Map<number, number>();
  #sequence = 0;
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    segments: number[],
    private readonly segmentBytes: number,
  ) {
    this.#segments = new Set(segments);
    this.#next = Math.max(0, ...segments) + 1;
  }

  static async open(dir: string, segmentBytes = SEGMENT_BYTES): Promise<BodySpool> {
    await fsp.mkdir(dir, { recursive: true });
    const segments: number[] = [];
    for (const name of await fsp.readdir(dir)) {
      const match = SEGMENT_FILE.exec(name);
      if (match) segments.push(Number(match[1]));
    }
    return new BodySpool(dir, segments, segmentBytes);
  }

  /** A counter that moves with every settled append: what `settledSince` compares with. */
  get sequence(): number {
    return this.#sequence;
  }

  /** The segment that takes new bodies; every lower one is closed. */
  get activeSegment(): number {
    return this.#active?.segment ?? this.#next;
  }

  /** Segment files on disk, in order. */
  segments(): number[] {
    return [...this.#segments].sort((a, b) => a - b);
  }

  /** A segment file's size and the time of its last write (ms since the epoch). */
  async segmentStat(segment: number): Promise<{ size: number; modifiedAt: number }> {
    const stat = await fsp.stat(join(this.dir, segmentFile(segment)));
    return { size: stat.size, modifiedAt: stat.mtimeMs };
  }

  /**
   * Write the bodies and return where each one lies; resolves once they are
   * on disk. On failure nothing refers to what was written, and the next
   * append starts a new segment.
   */
  append(bodies: readonly Uint8Array[]): Promise<BodyRef[]> {
    const run = this.#tail.then(() => this.#append(bodies));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #append(bodies: readonly Uint8Array[]): Promise<BodyRef[]> {
    const total = bodies.reduce((sum, body) => sum + body.byteLength, 0);
    if (!this.#active || (this.#active.size > 0 && this.#active.size + total > this.segmentBytes)) await this.#startSegment();
    const active = this.#active!;
    const refs: BodyRef[] = [];
    let offset = active.size;
    for (const body of bodies) {
      refs.push({ segment: active.segment, offset, length: body.byteLength });
      offset += body.byteLength;
    }
    this.#unsettled.set(active.segment, (this.#unsettled.get(active.segment) ?? 0) + 1);
    try {
      await writeAll(active.fd, bodies.filter((b) => b.byteLength > 0), active.size);
    } catch (error) {
      this.#settleSegment(active.segment);
      await this.#closeActive();
      throw error;
    }
    active.size = offset;
    return refs;
  }

  /** The database write that refers to these bodies has committed (or failed). */
  settle(refs: readonly BodyRef[]): void {
    for (const segment of new Set(refs.map((r) => r.segment))) this.#settleSegment(segment);
  }

  #settleSegment(segment: number): void {
    const left = (this.#unsettled.get(segment) ?? 1) - 1;
    if (left > 0) this.#unsettled.set(segment, left);
    else this.#unsettled.delete(segment);
    this.#lastSettled.set(segment, ++this.#sequence);
  }

  /** An append to this segment is unsettled, or one settled after `sequence`. */
  touchedSince(segment: number, sequence: number): boolean {
    return this.#unsettled.has(segment) || (this.#lastSettled.get(segment) ?? 0) > sequence;
  }

  async read(ref: BodyRef): Promise<Uint8Array> {
    const body = new Uint8Array(ref.length);
    if (ref.length === 0) return body;
    this.#reading.set(ref.segment, (this.#reading.get(ref.segment) ?? 0) + 1);
    try {
      const fd = await this.#reader(ref.segment);
      let done = 0;
      while (done < ref.length) {
        const bytesRead = await readAt(fd, body, done, ref.length - done, ref.offset + done);
        if (bytesRead === 0) throw new Error(`spool segment ${ref.segment} ends before ${ref.offset + ref.length}`);
        done += bytesRead;
      }
      return body;
    } finally {
      const left = this.#reading.get(ref.segment)! - 1;
      if (left > 0) this.#reading.set(ref.segment, left);
      else this.#reading.delete(ref.segment);
    }
  }

  #reader(segment: number): Promise<number> {
    let handle = this.#readers.get(segment);
    if (!handle) {
      handle = openFile(join(this.dir, segmentFile(segment)), "r");
      this.#readers.set(segment, handle);
      handle.catch(() => this.#readers.delete(segment));
    }
    return handle;
  }

  /**
   * Delete a closed segment; false (and nothing done) while a read of it is
   * under way or it is still open to appends.
   */
  async remove(segment: number): Promise<boolean> {
    if (segment >= this.activeSegment || this.#reading.has(segment) || this.#unsettled.has(segment)) return false;
    const reader = this.#readers.get(segment);
    this.#readers.delete(segment);
    await reader?.then(closeFile).catch(() => undefined);
    await fsp.rm(join(this.dir, segmentFile(segment)), { force: true });
    this.#segments.delete(segment);
    this.#lastSettled.delete(segment);
    return true;
  }

  async close(): Promise<void> {
    await this.#tail;
    await this.#closeActive();
    for (const reader of this.#readers.values()) await reader.then(closeFile).catch(() => undefined);
    this.#readers.clear();
  }

  async #startSegment(): Promise<void> {
    await this.#closeActive();
    const segment = this.#next++;
    // O_DSYNC: each write returns once its data (and the file size) is on disk.
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC;
    const fd = await openFile(join(this.dir, segmentFile(segment)), flags, 0o600);
    this.#segments.add(segment);
    this.#active = { segment, fd, size: 0 };
    await syncDirectory(this.dir); // the new file's name must survive a crash too
  }

  async #closeActive(): Promise<void> {
    const active = this.#active;
    this.#active = undefined;
    if (active) await closeFile(active.fd).catch(() => undefined);
  }
}

/** writev until every byte is written: a regular file may take less than asked (a full disk reports it on the next call). */
async function writeAll(fd: number, parts: readonly Uint8Array[], position: number): Promise<void> {
  let pending = [...parts];
  let at = position;
  while (pending.length > 0) {
    const bytesWritten = await writeAt(fd, pending, at);
    if (bytesWritten === 0) throw new Error("spool write made no progress");
    at += bytesWritten;
    let skip = bytesWritten;
    while (pending.length > 0 && skip >= pending[0]!.byteLength) skip -= pending.shift()!.byteLength;
    if (pending.length > 0 && skip > 0) pending[0] = pending[0]!.subarray(skip);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const fd = await openFile(dir, "r");
  try {
    await syncFile(fd);
  } finally {
    await closeFile(fd);
  }
}
