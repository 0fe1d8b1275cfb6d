import { prepend } from "../core/headroom.ts";

const CRLFCRLF = new Uint8Array([13, 10, 13, 10]);

/** Byte offset where the body starts (after the blank line), or the length when there is no body. */
export function headerSectionEnd(message: Uint8Array): number {
  if (message[0] === 13 && message[1] === 10) return 2;
  outer: for (let i = 0; i + 3 < message.length; i++) {
    for (let j = 0; j < 4; j++) if (message[i + j] !== CRLFCRLF[j]) continue outer;
    return i + 4;
  }
  return message.length;
}

/** Whether the header section has a field of this name (RFC 5322 2.2: names are case-insensitive). */
export function hasHeader(message: Uint8Array, name: string): boolean {
  const head = new TextDecoder("latin1").decode(message.subarray(0, headerSectionEnd(message)));
  return new RegExp(`(^|\\r\\n)${name}[ \\t]*:`, "i").test(head);
}

/** The lines, each with its CRLF, in front of the message (in place when it has room, src/core/headroom.ts). */
export function prependHeaders(message: Uint8Array, lines: readonly string[]): Uint8Array {
  if (lines.length === 0) return message;
  return prepend(message, new TextEncoder().encode(lines.map((l) => `${l}\r\n`).join("")));
}
