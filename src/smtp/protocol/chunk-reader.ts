/**
 * BDAT (RFC 3030 2): "BDAT" SP chunk-size [SP "LAST"], then exactly
 * chunk-size octets of message, with no dot-stuffing and no end marker.
 * The octets are binary-safe: a bare CR or LF in them is data.
 */

import type { MessageBuffer } from "./message-buffer.ts";

export interface BdatArgs {
  readonly size: number;
  readonly last: boolean;
}

/** chunk-size = 1*DIGIT; undefined on a syntax error. */
export function parseBdat(args: string): BdatArgs | undefined {
  const m = /^(\d{1,15})(?: +(LAST))? *$/i.exec(args);
  if (!m) return undefined;
  return { size: Number(m[1]), last: m[2] !== undefined };
}

/**
 * Reads one chunk into a message (or, with no message, reads and drops it:
 * a refused BDAT's octets must still be consumed, RFC 3030 2).
 */
export class ChunkReader {
  #remaining: number;

  constructor(
    size: number,
    readonly into: MessageBuffer | undefined,
  ) {
    this.#remaining = size;
  }

  get done(): boolean {
    return this.#remaining === 0;
  }

  /** Feed bytes; returns the bytes after the chunk (pipelined commands) once it is complete. */
  push(chunk: Uint8Array): Uint8Array | undefined {
    const n = Math.min(this.#remaining, chunk.length);
    this.into?.append(chunk.subarray(0, n));
    this.#remaining -= n;
    return this.#remaining === 0 ? chunk.subarray(n) : undefined;
  }
}
