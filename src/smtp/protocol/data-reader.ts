/**
 * DATA body reader (RFC 5321 4.1.1.4, 4.5.2). The body ends only at
 * CRLF "." CRLF; the CRLF before the dot belongs to the message. A leading
 * dot on any other line is removed (dot-unstuffing). A bare CR or LF is never
 * a line end: it is kept, flagged, and the message is refused once it ends
 * (SMTP smuggling). Past maxBytes the body is counted but not stored.
 */

import { MessageBuffer } from "./message-buffer.ts";

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
  ) {
    this.#message = new MessageBuffer({ maxBytes, maxLineLength });
  }

  get done(): boolean {
    return this.#done;
  }

  /**
   * Feed bytes. Returns undefined while the body continues, or the bytes
   * after the terminating CRLF.CRLF (pipelined commands) once it ends.
   */
  push(chunk: Uint8Array): Uint8Array | undefined {
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
          // Fast path: whole clean lines copied in one piece (found with native searches).
          const clean = cleanRun(chunk, i);
          if (clean > i) {
            this.#emit(chunk.subarray(i, clean));
            this.#state = chunk[clean - 1] === LF ? State.LineStart : State.Middle;
            i = clean;
            break;
          }
          // Fast path: copy a run of ordinary bytes.
          let j = i;
          while (j < chunk.length && chunk[j] !== CR && chunk[j] !== LF) j++;
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
    return { message: m.bytes(), size: m.size, overflow: m.overflow, bareEol: this.#bareEol, longLine: m.longLine };
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
 * The end of the run from `start` made of whole lines that end in CRLF, with
 * no line starting with "." after the first: they can be copied as they are.
 * Stops before the first line that is not complete in this chunk, or that
 * needs the state machine (a dot at its start, a bare CR or LF).
 */
function cleanRun(chunk: Uint8Array, start: number): number {
  let end = start;
  for (let lf = chunk.indexOf(LF, start); lf !== -1; lf = chunk.indexOf(LF, lf + 1)) {
    if (lf === start || chunk[lf - 1] !== CR) return end;
    const cr = chunk.indexOf(CR, end);
    if (cr !== lf - 1) return end; // a bare CR inside the line
    end = lf + 1;
    if (chunk[end] === DOT) return end;
  }
  return end;
}

const CRLF = new Uint8Array([CR, LF]);
const BARE_CR = new Uint8Array([CR]);
const BARE_LF = new Uint8Array([LF]);
