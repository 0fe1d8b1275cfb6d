import { prepend } from "../core/headroom.ts";

/** Byte offset where the body starts (after the blank line), or the length when there is no body. */
export function headerSectionEnd(message: Uint8Array): number {
  if (message[0] === 13 && message[1] === 10) return 2;
  for (let cr = message.indexOf(13); cr >= 0 && cr + 3 < message.length; cr = message.indexOf(13, cr + 1)) {
    if (message[cr + 1] === 10 && message[cr + 2] === 13 && message[cr + 3] === 10) return cr + 4;
  }
  return message.length;
}

/**
 * Whether the header section has a field of this name (RFC 5322 2.2: names
 * are case-insensitive): a line, at the start or after a CRLF, that begins
 * with the name, then blanks and ":". Read on the bytes, as a field name is
 * ASCII: nothing to decode.
 */
export function hasHeader(message: Uint8Array, name: string): boolean {
  const end = headerSectionEnd(message);
  for (let line = 0; line < end; line = lineAfter(message, line, end)) {
    if (fieldStartsAt(message, line, end, name)) return true;
  }
  return false;
}

/** Where the line after the one at `from` starts (just after its CRLF); `end` when there is none before it. */
function lineAfter(message: Uint8Array, from: number, end: number): number {
  for (let cr = message.indexOf(13, from); cr >= 0 && cr + 1 < end; cr = message.indexOf(13, cr + 1)) {
    if (message[cr + 1] === 10) return cr + 2;
  }
  return end;
}

/** Whether the bytes at `at` are `name` in any case, then blanks, then ":". */
function fieldStartsAt(message: Uint8Array, at: number, end: number, name: string): boolean {
  if (at + name.length >= end) return false;
  for (let i = 0; i < name.length; i++) {
    if (asciiLower(message[at + i]!) !== asciiLower(name.charCodeAt(i))) return false;
  }
  let i = at + name.length;
  while (i < end && (message[i] === 32 || message[i] === 9)) i++;
  return i < end && message[i] === 58;
}

const asciiLower = (code: number): number => (code >= 65 && code <= 90 ? code + 32 : code);

/** The lines, each with its CRLF, in front of the message (in place when it has room, src/core/headroom.ts). */
export function prependHeaders(message: Uint8Array, lines: readonly string[]): Uint8Array {
  if (lines.length === 0) return message;
  return prepend(message, new TextEncoder().encode(lines.map((l) => `${l}\r\n`).join("")));
}
