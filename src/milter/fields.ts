/**
 * The field types inside a packet's data (milter8.c MILTER8_DATA_*): a
 * 32-bit big-endian number, a NUL-terminated string, a 16-bit port, raw
 * bytes. Reading checks every bound and throws MilterProtocolError; strings
 * are UTF-8 and a malformed one is an error, not a replacement character.
 */
import { MilterProtocolError } from "./errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Reads fields one after the other from one packet's data. */
export class FieldReader {
  #pos = 0;

  constructor(readonly data: Uint8Array, readonly what: string) {}

  get remaining(): number {
    return this.data.length - this.#pos;
  }

  uint32(): number {
    if (this.remaining < 4) throw this.#error("a 32-bit number");
    const value = new DataView(this.data.buffer, this.data.byteOffset + this.#pos, 4).getUint32(0);
    this.#pos += 4;
    return value;
  }

  uint16(): number {
    if (this.remaining < 2) throw this.#error("a 16-bit number");
    const value = new DataView(this.data.buffer, this.data.byteOffset + this.#pos, 2).getUint16(0);
    this.#pos += 2;
    return value;
  }

  byte(): number {
    if (this.remaining < 1) throw this.#error("a byte");
    return this.data[this.#pos++]!;
  }

  /** A NUL-terminated UTF-8 string (the NUL is consumed, not returned). */
  string(): string {
    const nul = this.data.indexOf(0, this.#pos);
    if (nul < 0) throw this.#error("a NUL-terminated string");
    const bytes = this.data.subarray(this.#pos, nul);
    this.#pos = nul + 1;
    try {
      return decoder.decode(bytes);
    } catch {
      throw new MilterProtocolError(`${this.what}: a string is not valid UTF-8`);
    }
  }

  /** Every remaining byte. */
  rest(): Uint8Array {
    const bytes = this.data.subarray(this.#pos);
    this.#pos = this.data.length;
    return bytes;
  }

  /** The packet must hold nothing more (milter8.c: left-over data is an error). */
  end(): void {
    if (this.remaining !== 0) {
      throw new MilterProtocolError(`${this.what}: ${this.remaining} unexpected bytes at the end`);
    }
  }

  #error(expected: string): MilterProtocolError {
    return new MilterProtocolError(`${this.what}: packet too short for ${expected}`);
  }
}

/** Builds one packet's data from fields. */
export class FieldWriter {
  #parts: Uint8Array[] = [];
  #length = 0;

  uint32(value: number): this {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value >>> 0);
    return this.bytes(bytes);
  }

  uint16(value: number): this {
    const bytes = new Uint8Array(2);
    new DataView(bytes.buffer).setUint16(0, value);
    return this.bytes(bytes);
  }

  byte(value: number): this {
    return this.bytes(Uint8Array.of(value));
  }

  /** A string with its NUL; a NUL inside would end it early, so it is refused. */
  string(value: string): this {
    if (value.includes("\0")) throw new RangeError(`a milter string cannot hold NUL: ${JSON.stringify(value)}`);
    this.bytes(encoder.encode(value));
    return this.byte(0);
  }

  bytes(value: Uint8Array): this {
    this.#parts.push(value);
    this.#length += value.length;
    return this;
  }

  /** The whole packet: length, code, data. */
  packet(code: number): Uint8Array {
    const out = new Uint8Array(5 + this.#length);
    new DataView(out.buffer).setUint32(0, 1 + this.#length);
    out[4] = code;
    let pos = 5;
    for (const part of this.#parts) {
      out.set(part, pos);
      pos += part.length;
    }
    return out;
  }
}
