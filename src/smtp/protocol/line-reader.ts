/**
 * Command line framing over raw bytes. Only CRLF ends a line (RFC 5321 2.3.8);
 * a bare CR or LF is never a line end (SMTP smuggling), and the line that
 * holds one is reported as "bare-eol". Lines longer than the limit (512
 * octets with CRLF, RFC 5321 4.5.3.1.4) are reported as "too-long" once
 * their CRLF arrives; their bytes are dropped as they come, so memory stays
 * bounded by the limit.
 */

const CR = 13;
const LF = 10;

export type LineEvent =
  | { readonly kind: "line"; readonly bytes: Uint8Array }
  | { readonly kind: "too-long" }
  | { readonly kind: "bare-eol" };

export class LineReader {
  #buffer: Uint8Array = new Uint8Array(0);
  /** Dropping an over-long line until its CRLF. */
  #discarding = false;
  /** Bytes of the current line already scanned without finding CRLF. */
  #scanned = 0;

  /** @param maxLength the longest line accepted, counting its CRLF. */
  constructor(readonly maxLength = 512) {}

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#buffer.length === 0) {
      this.#buffer = chunk; // kept, not copied: socket chunks are fresh buffers, never reused
      return;
    }
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer);
    joined.set(chunk, this.#buffer.length);
    this.#buffer = joined;
  }

  /** Bytes received but not yet consumed as lines. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** The next complete line, or undefined when more bytes are needed. */
  next(): LineEvent | undefined {
    const buf = this.#buffer;
    for (let i = this.#scanned; i < buf.length; i++) {
      if (buf[i] === CR && i + 1 < buf.length && buf[i + 1] === LF) {
        const line = buf.subarray(0, i);
        this.#consume(i + 2);
        if (this.#discarding) {
          this.#discarding = false;
          return { kind: "too-long" };
        }
        if (i + 2 > this.maxLength) return { kind: "too-long" };
        if (line.includes(CR) || line.includes(LF)) return { kind: "bare-eol" };
        return { kind: "line", bytes: line };
      }
    }
    // No CRLF yet. Keep a trailing CR: its LF may come in the next chunk.
    const keep = buf.length > 0 && buf[buf.length - 1] === CR ? 1 : 0;
    if (buf.length - keep >= this.maxLength) {
      this.#discarding = true;
      this.#consume(buf.length - keep);
      return undefined;
    }
    this.#scanned = Math.max(0, buf.length - keep);
    return undefined;
  }

  /** Hand over every buffered byte (entering DATA, or discarded at STARTTLS). */
  take(): Uint8Array {
    const rest = this.#buffer;
    this.#buffer = new Uint8Array(0);
    this.#scanned = 0;
    this.#discarding = false;
    return rest;
  }

  #consume(n: number): void {
    this.#buffer = this.#buffer.subarray(n);
    this.#scanned = 0;
  }
}
