import { close, open, promises as fsp, read } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { SpoolWrite } from "./spool-file.ts";

/** Where one body lies: its segment file, the offset in it, and its length. */
export interface BodyRef {
  readonly segment: number;
  readonly offset: number;
  readonly length: number;
}

/** The spool of a data directory (an embedded database's only). */
export function spoolDirOf(dataDir: string): string {
  return join(dataDir, "spool");
}

/** Segment files: a zero-padded number, so a listing sorts in the order they were made. */
const SEGMENT_FILE = /^(\d{12})\.bodies$/;
const segmentFile = (segment: number) => `${String(segment).padStart(12, "0")}.bodies`;

/** A segment is closed to new bodies once this full; one body larger than this gets a segment of its own. */
const SEGMENT_BYTES = 32 * 1024 * 1024;

/** Segments kept open for reading, the most recently read: a deep queue must not use up the descriptors. */
const OPEN_READERS = 32;

/** Plain descriptors rather than FileHandles: a FileHandle collected unclosed is an error in some runtimes. */
const openFile = promisify(open);
const closeFile = promisify(close);

/** Counts per segment (writes not settled, reads under way): a segment is absent when its count is 0. */
function countUp(counts: Map<number, number>, segment: number): void {
  counts.set(segment, (counts.get(segment) ?? 0) + 1);
}

function countDown(counts: Map<number, number>, segment: number): void {
  const left = (counts.get(segment) ?? 1) - 1;
  if (left > 0) counts.set(segment, left);
  else counts.delete(segment);
}

function readAt(fd: number, into: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, into, offset, length, position, (error, n) => (error ? reject(error) : resolve(n)))
  );
}

/**
 * The spool: message bodies on local disk, beside the queue database rather
 * than in it. SQLite writes a blob twice (into the WAL, then into the
 * database file at checkpoint) and every byte of it passes through the
 * commit that a waiting SMTP client's 250 depends on; here a group of
 * bodies is one append with O_DSYNC (the data is on disk when the write
 * returns), made right before the database commit that refers to it, which
 * then carries only rows (src/queue/spool-file.ts does the writing).
 *
 * Bodies go one after the other into the active segment; a new segment
 * starts when it is full, after a failed write, and at every start of the
 * process (bytes a crash left after the last completed write are never
 * appended to). The queue row names (segment, offset, length). A segment is
 * removed once no row refers to it (src/queue/spool-collector.ts decides
 * when).
 *
 * Every placed append must be settled (`settle`) once the database write
 * that refers to it has committed or failed: until then its segment is
 * never removed, because the rows that keep it alive may not be visible yet.
 */
export class BodySpool {
  #active: { segment: number; size: number } | undefined;
  #next: number;
  readonly #segments: Set<number>;
  readonly #readers = new Map<number, Promise<number>>();
  readonly #reading = new Map<number, number>();
  readonly #unsettled = new Map<number, number>();
  /** Per segment, the sequence number of its last settled append. */
  readonly #lastSettled = new Map<number, number>();
  #sequence = 0;

  private constructor(
    readonly dir: string,
    segments: number[],
    private readonly segmentBytes: number,
  ) {
    this.#segments = new Set(segments);
    this.#next = Math.max(0, ...segments) + 1;
  }

  static async open(dir: string, segmentBytes = SEGMENT_BYTES): Promise<BodySpool> {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 }); // bodies are private (src/queue/data-dir.ts)
    const segments: number[] = [];
    for (const name of await fsp.readdir(dir)) {
      const match = SEGMENT_FILE.exec(name);
      if (match) segments.push(Number(match[1]));
    }
    return new BodySpool(dir, segments, segmentBytes);
  }

  /** A counter that moves with every settled append: what `touchedSince` compares with. */
  get sequence(): number {
    return this.#sequence;
  }

  /** The segment that takes new bodies; every lower one is closed. */
  get activeSegment(): number {
    return this.#active?.segment ?? this.#next;
  }

  /** Segment files on disk (or about to be), in order. */
  segments(): number[] {
    return [...this.#segments].sort((a, b) => a - b);
  }

  /** A segment file's size and the time of its last write (ms since the epoch). */
  async segmentStat(segment: number): Promise<{ size: number; modifiedAt: number }> {
    const stat = await fsp.stat(this.#path(segment));
    return { size: stat.size, modifiedAt: stat.mtimeMs };
  }

  /**
   * Reserve room for the bodies: where each one will lie, and the write that
   * puts them there, to be carried out before the rows that refer to them
   * are committed. Placements are written in the order they are made.
   */
  place(bodies: readonly Uint8Array[]): { refs: BodyRef[]; write: SpoolWrite } {
    const total = bodies.reduce((sum, body) => sum + body.byteLength, 0);
    let create = false;
    if (!this.#active || (this.#active.size > 0 && this.#active.size + total > this.segmentBytes)) {
      this.#active = { segment: this.#next++, size: 0 };
      this.#segments.add(this.#active.segment);
      create = true;
    }
    const { segment } = this.#active;
    const refs: BodyRef[] = [];
    let offset = this.#active.size;
    for (const body of bodies) {
      refs.push({ segment, offset, length: body.byteLength });
      offset += body.byteLength;
    }
    const write: SpoolWrite = { path: this.#path(segment), offset: this.#active.size, parts: bodies, create };
    this.#active.size = offset;
    countUp(this.#unsettled, segment);
    return { refs, write };
  }

  /** A write failed: what follows goes to a new segment (this one may end in half a write). */
  failed(refs: readonly BodyRef[]): void {
    if (refs.some((ref) => ref.segment === this.#active?.segment)) this.#active = undefined;
  }

  /** The database write that refers to these bodies has committed (or failed). */
  settle(refs: readonly BodyRef[]): void {
    for (const segment of new Set(refs.map((r) => r.segment))) {
      countDown(this.#unsettled, segment);
      this.#lastSettled.set(segment, ++this.#sequence);
    }
  }

  /** An append to this segment is unsettled, or one settled after `sequence`. */
  touchedSince(segment: number, sequence: number): boolean {
    return this.#unsettled.has(segment) || (this.#lastSettled.get(segment) ?? 0) > sequence;
  }

  async read(ref: BodyRef): Promise<Uint8Array> {
    const body = new Uint8Array(ref.length);
    if (ref.length === 0) return body;
    countUp(this.#reading, ref.segment);
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
      countDown(this.#reading, ref.segment);
    }
  }

  #reader(segment: number): Promise<number> {
    let fd = this.#readers.get(segment);
    this.#readers.delete(segment); // re-inserted last: the map is in order of use
    if (!fd) {
      fd = openFile(this.#path(segment), "r");
      fd.catch(() => this.#readers.delete(segment));
      this.#closeIdleReaders();
    }
    this.#readers.set(segment, fd);
    return fd;
  }

  /** Close the least recently read segments beyond OPEN_READERS that no read is using. */
  #closeIdleReaders(): void {
    for (const [segment, fd] of this.#readers) {
      if (this.#readers.size < OPEN_READERS) return;
      if (this.#reading.has(segment)) continue;
      this.#readers.delete(segment);
      void fd.then(closeFile).catch(() => undefined);
    }
  }

  /**
   * Delete a closed segment; false (and nothing done) while a read of it is
   * under way, a write to it is unsettled, or it is still open to appends.
   */
  async remove(segment: number): Promise<boolean> {
    if (segment >= this.activeSegment || this.#reading.has(segment) || this.#unsettled.has(segment)) return false;
    const reader = this.#readers.get(segment);
    this.#readers.delete(segment);
    await reader?.then(closeFile).catch(() => undefined);
    await fsp.rm(this.#path(segment), { force: true });
    this.#segments.delete(segment);
    this.#lastSettled.delete(segment);
    return true;
  }

  async close(): Promise<void> {
    for (const reader of this.#readers.values()) await reader.then(closeFile).catch(() => undefined);
    this.#readers.clear();
  }

  #path(segment: number): string {
    return join(this.dir, segmentFile(segment));
  }
}
