/**
 * DATA encoding (RFC 5321 4.5.2, 2.3.8): every line ends with CRLF (a bare CR
 * or LF becomes CRLF, so no bare LF reaches the peer and nothing can smuggle
 * an end of data), a line that starts with "." gets one more, the message
 * always ends with CRLF, and the terminating ".\r\n" is appended.
 */
export function encodeData(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(encodedLength(message));
  let n = 0;
  let lineStart = true;
  for (let i = 0; i < message.length; i++) {
    const byte = message[i]!;
    if (byte === 13 || byte === 10) {
      if (byte === 13 && message[i + 1] === 10) i++;
      out[n++] = 13;
      out[n++] = 10;
      lineStart = true;
      continue;
    }
    if (lineStart && byte === 46) out[n++] = 46;
    out[n++] = byte;
    lineStart = false;
  }
  if (!lineStart) {
    out[n++] = 13;
    out[n++] = 10;
  }
  out[n++] = 46;
  out[n++] = 13;
  out[n++] = 10;
  return out;
}

/** Exact size of encodeData's output, counted first so big messages are copied once. */
function encodedLength(message: Uint8Array): number {
  let n = 0;
  let lineStart = true;
  for (let i = 0; i < message.length; i++) {
    const byte = message[i]!;
    if (byte === 13 || byte === 10) {
      if (byte === 13 && message[i + 1] === 10) i++;
      n += 2;
      lineStart = true;
      continue;
    }
    n += lineStart && byte === 46 ? 2 : 1;
    lineStart = false;
  }
  return n + (lineStart ? 0 : 2) + 3;
}

/** True when the message needs BODY=8BITMIME (RFC 6152): any octet above 127. */
export function has8BitBytes(message: Uint8Array): boolean {
  for (const byte of message) if (byte > 127) return true;
  return false;
}
