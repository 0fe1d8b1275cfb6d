/**
 * Message bytes with free room in front of them, so that the header fields a
 * relay adds at the top (the Received trace field, RFC 5321 4.4; Date and
 * Message-ID, RFC 6409 8) are written in place instead of copying the whole
 * message once more. A buffer made here holds one message, from its current
 * start to the end of the buffer: the bytes before the start are free.
 */

import { Buffer } from "node:buffer";

/** Where the message starts in each buffer made here; everything before it is free. */
const starts = new WeakMap<ArrayBuffer, number>();

/** Room kept in front of a message: trace fields and a missing Date and Message-ID fit easily. */
export const HEADROOM = 1024;

/**
 * Room for a message of `length` bytes with `headroom` free bytes before it.
 * The bytes are not zeroed first, a cost of the same order as copying the
 * message in: the caller must write all `length` of them, and the free room
 * before them is never read.
 */
export function withHeadroom(length: number, headroom = HEADROOM): Uint8Array {
  // allocUnsafeSlow, never allocUnsafe: the buffer must hold this message alone (isSole,
  // handed whole to a worker thread), not be a slice of Buffer's shared pool.
  const buffer = Buffer.allocUnsafeSlow(headroom + length).buffer;
  starts.set(buffer, headroom);
  return new Uint8Array(buffer, headroom, length);
}

/**
 * `head` followed by `message`: in place when the message is the whole rest
 * of a buffer made here with room enough (the old view must not be used
 * afterwards), else one copy into a new such buffer.
 */
export function prepend(message: Uint8Array, head: Uint8Array): Uint8Array {
  const buffer = message.buffer as ArrayBuffer;
  const start = message.byteOffset;
  if (isSole(message) && start >= head.length) {
    const at = start - head.length;
    const out = new Uint8Array(buffer, at, head.length + message.length);
    out.set(head, 0);
    starts.set(buffer, at);
    return out;
  }
  const out = withHeadroom(head.length + message.length);
  out.set(head, 0);
  out.set(message, head.length);
  return out;
}

/**
 * True when the message is the only thing its buffer holds (made here, from
 * its start to the end): the buffer may then be handed to another thread
 * whole, as nothing else reads it.
 */
export function isSole(message: Uint8Array): boolean {
  const buffer = message.buffer;
  return (
    buffer instanceof ArrayBuffer &&
    starts.get(buffer) === message.byteOffset &&
    message.byteOffset + message.byteLength === buffer.byteLength
  );
}
