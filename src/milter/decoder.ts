/**
 * Milter packet framing over raw bytes, trusting nothing the peer sends.
 * A packet is a 4-byte big-endian length, then that many bytes: a one-byte
 * code and its data (milter8.c milter8_read_resp: the length counts the
 * code, so it is at least 1).
 *
 * A length of 0 or over the limit, or a code outside the expected set, is a
 * MilterProtocolError as soon as the 5 bytes that show it arrive: nothing is
 * buffered for it. A packet's data is copied into a buffer of exactly its
 * announced size, so memory stays bounded by the limit plus the chunk being
 * read. After an error the decoder stays failed.
 */
import { MilterProtocolError } from "./errors.ts";

/** Any packet larger than this is refused (libmilter's own default data limit is 64 KiB). */
export const MAX_PACKET_LENGTH = 1024 * 1024;

export interface Packet {
  readonly code: number;
  readonly data: Uint8Array;
}

const HEADER_LENGTH = 5;

export class PacketDecoder {
  #chunks: Uint8Array[] = [];
  #offset = 0;
  #header = new Uint8Array(HEADER_LENGTH);
  #headerFilled = 0;
  #code = 0;
  #data: Uint8Array | undefined;
  #dataFilled = 0;
  #failure: MilterProtocolError | undefined;

  /**
   * @param codes the codes a packet may carry (replies for the MTA side, commands for a milter)
   * @param maxLength the largest length field accepted (code + data)
   */
  constructor(readonly codes: ReadonlySet<number>, readonly maxLength = MAX_PACKET_LENGTH) {}

  push(chunk: Uint8Array): void {
    if (this.#failure || chunk.length === 0) return;
    this.#chunks.push(chunk); // kept, not copied: socket chunks are fresh buffers
  }

  /** Bytes held: those pushed and not yet read, and the buffer of the packet being read. */
  get held(): number {
    const unread = this.#chunks.reduce((sum, chunk) => sum + chunk.length, 0) - this.#offset;
    return unread + (this.#data?.length ?? 0);
  }

  /** The next complete packet, or undefined when more bytes are needed; throws MilterProtocolError. */
  next(): Packet | undefined {
    if (this.#failure) throw this.#failure;
    if (this.#data === undefined) {
      this.#headerFilled += this.#take(this.#header.subarray(this.#headerFilled));
      if (this.#headerFilled < HEADER_LENGTH) return undefined;
      const length = new DataView(this.#header.buffer).getUint32(0);
      const code = this.#header[4]!;
      if (length < 1) return this.#fail("packet length 0: a packet holds at least its code");
      if (length > this.maxLength) {
        return this.#fail(`packet length ${length} is over the limit of ${this.maxLength}`);
      }
      if (!this.codes.has(code)) return this.#fail(`unknown packet code ${describeCode(code)}`);
      this.#code = code;
      this.#data = new Uint8Array(length - 1);
      this.#dataFilled = 0;
    }
    this.#dataFilled += this.#take(this.#data.subarray(this.#dataFilled));
    if (this.#dataFilled < this.#data.length) return undefined;
    const packet = { code: this.#code, data: this.#data };
    this.#data = undefined;
    this.#headerFilled = 0;
    return packet;
  }

  /** Copy pushed bytes into `target` as far as they go; returns how many. */
  #take(target: Uint8Array): number {
    let copied = 0;
    while (copied < target.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const n = Math.min(target.length - copied, chunk.length - this.#offset);
      target.set(chunk.subarray(this.#offset, this.#offset + n), copied);
      copied += n;
      this.#offset += n;
      if (this.#offset === chunk.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    return copied;
  }

  #fail(message: string): never {
    this.#failure = new MilterProtocolError(message);
    this.#chunks = [];
    this.#offset = 0;
    throw this.#failure;
  }
}

/** A code as the reference writes it ('a') when printable, else in hex. */
export function describeCode(code: number): string {
  return code >= 0x21 && code <= 0x7e ? `'${String.fromCharCode(code)}'` : `0x${code.toString(16).padStart(2, "0")}`;
}
