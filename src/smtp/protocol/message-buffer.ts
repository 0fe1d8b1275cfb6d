import { isSole, withHeadroom } from "../../core/headroom.ts";

/**
 * The message as it arrives (DATA or BDAT chunks): stored up to maxBytes,
 * counted past it, and measured for line length. A text line may hold at
 * most 998 octets before its CRLF (RFC 5322 2.1.1; RFC 5321 4.5.3.1.6 says
 * 1000 with the CRLF). A line is measured on the message as stored (after
 * dot-unstuffing) and ends at LF, so a bare LF (legal in BDAT, RFC 3030)
 * only ever shortens a line.
 */

const CR = 13;
const LF = 10;

export interface MessageLimits {
  readonly maxBytes: number;
  /** Longest line without its line end; Infinity turns the check off. */
  readonly maxLineLength: number;
  /**
   * Memory granted for the stored message, when it is counted: a message
   * that outgrows it asks for more, and is starved (no longer stored, still
   * counted) when none is free.
   */
  readonly memory?: MessageMemory;
}

export interface MessageMemory {
  readonly bytes: number;
  grow(more: number): boolean;
}

/** Memory is asked for in steps of at least this much, not for every chunk. */
const GROW_STEP = 1024 * 1024;

/**
 * Appended bytes are kept by reference and joined once, at the end: a
 * message costs one copy however many chunks it came in. The caller must
 * not change bytes it has appended (socket chunks are fresh buffers).
 */
export class MessageBuffer {
  #parts: Uint8Array[] = [];
  #stored = 0;
  #size = 0;
  /** Octets since the last LF, a CR just before it included. */
  #line = 0;
  #lastCr = false;
  #longLine = false;
  #starved = false;

  constructor(readonly limits: MessageLimits) {}

  /** The message outgrew its memory and none more was free: it was not stored whole. */
  get starved(): boolean {
    return this.#starved;
  }

  /** Octets received, counted even past the limit. */
  get size(): number {
    return this.#size;
  }

  get overflow(): boolean {
    return this.#size > this.limits.maxBytes;
  }

  /** Some line was longer than maxLineLength (the last one counts once the message ends). */
  get longLine(): boolean {
    return this.#longLine || this.#line > this.limits.maxLineLength;
  }

  /**
   * The stored message, whole only when !overflow: one copy of the parts,
   * with room in front for the trace fields a relay adds (RFC 5321 4.4).
   */
  bytes(): Uint8Array {
    if (this.#parts.length === 1 && isSole(this.#parts[0]!)) return this.#parts[0]!;
    const out = withHeadroom(this.#stored);
    let at = 0;
    for (const part of this.#parts) {
      out.set(part, at);
      at += part.length;
    }
    this.#parts = [out];
    return out;
  }

  append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#measure(bytes);
    this.#store(bytes);
  }

  /**
   * Appends whole lines that each end in CRLF and hold no other CR or LF,
   * measured by the caller as it found their ends, so they are not searched
   * again: `firstLine` octets before the first CRLF (a continuation of the
   * current line), and `longestLine` the longest of the lines after it.
   */
  appendLines(lines: Uint8Array, firstLine: number, longestLine: number): void {
    const longest = Math.max(this.#line + firstLine, longestLine);
    if (longest > this.limits.maxLineLength) this.#longLine = true;
    this.#line = 0;
    this.#lastCr = false;
    this.#store(lines);
  }

  #store(bytes: Uint8Array): void {
    this.#size += bytes.length;
    const room = this.limits.maxBytes - this.#stored;
    if (room <= 0) return;
    const part = bytes.length <= room ? bytes : bytes.subarray(0, room);
    if (!this.#granted(part.length)) return;
    this.#parts.push(part);
    this.#stored += part.length;
  }

  /** Whether `more` octets fit in the memory granted, asking for more when they do not. */
  #granted(more: number): boolean {
    const memory = this.limits.memory;
    if (!memory || this.#starved) return !this.#starved;
    const short = this.#stored + more - memory.bytes;
    if (short <= 0) return true;
    const step = Math.min(Math.max(short, GROW_STEP), this.limits.maxBytes - memory.bytes);
    if (memory.grow(step)) return true;
    this.#starved = true;
    this.#parts = [];
    return false;
  }

  #measure(bytes: Uint8Array): void {
    let start = 0;
    for (let lf = bytes.indexOf(LF); lf >= 0; lf = bytes.indexOf(LF, start)) {
      const run = this.#line + (lf - start);
      const cr = lf > start ? bytes[lf - 1] === CR : this.#lastCr;
      if (run - (cr ? 1 : 0) > this.limits.maxLineLength) this.#longLine = true;
      this.#line = 0;
      start = lf + 1;
    }
    if (start < bytes.length) {
      this.#line += bytes.length - start;
      this.#lastCr = bytes[bytes.length - 1] === CR;
    } else {
      this.#lastCr = false;
    }
    // A run with no LF yet: past the limit even if a CR LF comes next.
    if (this.#line > this.limits.maxLineLength + 1) this.#longLine = true;
  }
}
