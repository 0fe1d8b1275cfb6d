/**
 * DATA body reader (RFC 5321 4.1.1.4, 4.5.2). The body ends only at
 * CRLF "." CRLF; the CRLF before the dot belongs to the message. A leading
 * dot on any other line is removed (dot-unstuffing). A bare CR or LF is never
 * a line end: it is kept, flagged, and the message is refused once it ends
 * (SMTP smuggling). Past maxBytes the body is counted but not stored.
 */

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
}

export class DataReader {
  #state: State = State.LineStart;
  #out = new Uint8Array(4096);
  #stored = 0;
  #size = 0;
  #bareEol = false;
  #done = false;

  constructor(readonly maxBytes: number) {}

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
    const message = this.#out.slice(0, this.#stored);
    return { message, size: this.#size, overflow: this.#size > this.maxBytes, bareEol: this.#bareEol };
  }

  #bare(byte: number): void {
    this.#bareEol = true;
    this.#emit(byte === CR ? BARE_CR : BARE_LF);
    this.#state = State.Middle;
  }

  #emit(bytes: Uint8Array): void {
    this.#size += bytes.length;
    const room = this.maxBytes - this.#stored;
    if (room <= 0) return;
    const part = bytes.length <= room ? bytes : bytes.subarray(0, room);
    if (this.#stored + part.length > this.#out.length) {
      const grown = new Uint8Array(Math.min(this.maxBytes, Math.max(this.#out.length * 2, this.#stored + part.length)));
      grown.set(this.#out.subarray(0, this.#stored));
      this.#out = grown;
    }
    this.#out.set(part, this.#stored);
    this.#stored += part.length;
  }
}

const CRLF = new Uint8Array([CR, LF]);
const BARE_CR = new Uint8Array([CR]);
const BARE_LF = new Uint8Array([LF]);
