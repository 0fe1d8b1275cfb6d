/**
 * DATA body reader (RFC 5321 4.1.1.4, 4.5.2). The body ends only at
 * CRLF "." CRLF; the CRLF before the dot belongs to the message. A leading
 * dot on any other line is removed (dot-unstuffing). A bare CR or LF is never
 * a line end: it is kept, flagged, and the message is refused once it ends
 * (SMTP smuggling). Past maxBytes the body is counted but not stored.
 */

import { MessageBuffer, type MessageMemory } from "./message-buffer.ts";

const CR = 13;
const LF = 10;
const DOT = 46;

const State = {
  LineStart: 0, // just after CRLF (or at the start of DATA)
  Middle: 1,
  Cr: 2, // saw CR inside a line
  Dot: 3, // saw "." at line start
  DotCr: 4, // saw "." CR at line start
} as const;
type State = (typeof State)[keyof typeof State];

export interface DataResult {
  /** The unstuffed message, complete only when !overflow. */
  readonly message: Uint8Array;
  /** Octets of the unstuffed message, counted even past the limit. */
  readonly size: number;
  readonly overflow: boolean;
  /** The message outgrew the memory granted to it (MessageLimits.memory) and was not kept. */
  readonly starved: boolean;
  /** A bare CR or LF appeared in the body. */
  readonly bareEol: boolean;
  /** A line was longer than the limit (RFC 5322 2.1.1). */
  readonly longLine: boolean;
}

export class DataReader {
  #state: State = State.LineStart;
  #message: MessageBuffer;
  #bareEol = false;
  #done = false;

  /** @param maxLineLength the longest line without CRLF; Infinity for no check. */
  constructor(
    readonly maxBytes: number,
    maxLineLength = Infinity,
    memory?: MessageMemory,
  ) {
    this.#message = new MessageBuffer({ maxBytes, maxLineLength, memory });
  }

  get done(): boolean {
    return this.#done;
  }

  /**
   * Feed bytes. Returns undefined while the body continues, or the bytes
   * after the terminating CRLF.CRLF (pipelined commands) once it ends.
   */
  push(chunk: Uint8Array): Uint8Array | undefined {
    const lines = new ChunkLines(chunk);
    let i = 0;
    while (i < chunk.length && !this.#done) {
      const b = chunk[i]!;
      switch (this.#state) {
        case State.Middle:
        case State.LineStart: {
          if (this.#state === State.LineStart && b === DOT) {
            this.#state = State.Dot;
            i++;
            break;
          }
          // Fast path: whole clean lines, copied in one piece and measured on the way.
          const clean = lines.cleanRun(i);
          if (clean > i) {
            this.#message.appendLines(chunk.subarray(i, clean), lines.firstLine, lines.longestLine);
            this.#state = State.LineStart; // a run ends at a CRLF
            i = clean;
            break;
          }
          // Fast path: copy a run of ordinary bytes, up to a bare CR or LF or the end of the chunk.
          const j = lines.nextLineBreak(i);
          if (j > i) {
            this.#emit(chunk.subarray(i, j));
            this.#state = State.Middle;
            i = j;
          } else if (b === CR) {
            this.#state = State.Cr;
            i++;
          } else {
            this.#bare(LF);
            i++;
          }
          break;
        }
        case State.Cr:
          if (b === LF) {
            this.#emit(CRLF);
            this.#state = State.LineStart;
            i++;
          } else {
            this.#bare(CR); // reprocess b in the middle of a line
          }
          break;
        case State.Dot:
          if (b === CR) {
            this.#state = State.DotCr;
            i++;
          } else {
            this.#state = State.Middle; // unstuff: drop the dot, keep b
          }
          break;
        case State.DotCr:
          if (b === LF) {
            this.#done = true;
            i++;
          } else {
            this.#bare(CR); // "." CR x: the dot was stuffing, the CR is bare
          }
          break;
      }
    }
    return this.#done ? chunk.subarray(i) : undefined;
  }

  result(): DataResult {
    const m = this.#message;
    return {
      message: m.bytes(),
      size: m.size,
      overflow: m.overflow,
      starved: m.starved,
      bareEol: this.#bareEol,
      longLine: m.longLine,
    };
  }

  #bare(byte: number): void {
    this.#bareEol = true;
    this.#emit(byte === CR ? BARE_CR : BARE_LF);
    this.#state = State.Middle;
  }

  #emit(bytes: Uint8Array): void {
    this.#message.append(bytes);
  }
}

/**
 * Line ends in one chunk, found four octets at a time in plain JavaScript:
 * on lines of typical length (about 78 octets) that is faster than a native
 * indexOf for each CR and each LF, whose cost per call outweighs the search.
 */
class ChunkLines {
  readonly #chunk: Uint8Array;
  readonly #words: DataView;
  /** Set by cleanRun: octets before the CRLF of the run's first line. */
  firstLine = 0;
  /** Set by cleanRun: the most octets before the CRLF of any later line in the run (0 if none). */
  longestLine = 0;

  constructor(chunk: Uint8Array) {
    this.#chunk = chunk;
    this.#words = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }

  /**
   * The end of the run from `start` made of whole lines that end in CRLF, with
   * no line starting with "." after the first: they can be copied as they are.
   * Stops before the first line that is not complete in this chunk, or that
   * needs the state machine (a dot at its start, a bare CR or LF). Every line
   * end is found here, so the lines' lengths are kept for the line-length
   * check instead of being searched for again.
   */
  cleanRun(start: number): number {
    const chunk = this.#chunk;
    this.firstLine = 0;
    this.longestLine = 0;
    let end = start;
    for (;;) {
      const lineBreak = this.nextLineBreak(end);
      if (chunk[lineBreak] !== CR || chunk[lineBreak + 1] !== LF) return end;
      const length = lineBreak - end;
      if (end === start) this.firstLine = length;
      else if (length > this.longestLine) this.longestLine = length;
      end = lineBreak + 2;
      if (chunk[end] === DOT) return end;
    }
  }

  /** The first CR or LF at or after `from`, or the chunk's length if there is none. */
  nextLineBreak(from: number): number {
    const chunk = this.#chunk;
    const length = chunk.length;
    let at = from;
    for (;;) {
      while (at + 4 <= length && !hasOctetBelow14(this.#words.getUint32(at))) at += 4;
      const wordEnd = Math.min(at + 4, length);
      for (; at < wordEnd; at++) if (chunk[at] === CR || chunk[at] === LF) return at;
      if (at >= length) return length;
    }
  }
}

/**
 * Whether any of the four octets in `word` is below 14, so may be a CR (13)
 * or LF (10): the "has less" bit trick. Subtracting 14 from every octet at
 * once sets the top bit of the lowest octet below 14 (no borrow reaches it).
 * With none below 14 nothing borrows, and a top bit comes only from an octet
 * of 142 or more, whose own top bit `~word` masks out.
 */
function hasOctetBelow14(word: number): boolean {
  return ((word - 0x0e0e0e0e) & ~word & 0x80808080) !== 0;
}

const CRLF = new Uint8Array([CR, LF]);
const BARE_CR = new Uint8Array([CR]);
const BARE_LF = new Uint8Array([LF]);
