import { isAscii } from "node:buffer";
import { hasDotLine, hasOnlyCrlf } from "../../core/crlf.ts";

/**
 * DATA encoding (RFC 5321 4.5.2, 2.3.8): every line ends with CRLF (a bare CR
 * or LF becomes CRLF, so no bare LF reaches the peer and nothing can smuggle
 * an end of data), a line that starts with "." gets one more, the message
 * always ends with CRLF, and the terminating ".\r\n" is appended. With
 * lineBreaks "crlf" the caller vouches that every line break already is CRLF
 * (the queue's form, src/core/crlf.ts), which spares a scan of the message.
 */
export function encodeData(message: Uint8Array, lineBreaks: "crlf" | "any" = "any"): Uint8Array {
  if ((lineBreaks === "crlf" || hasOnlyCrlf(message)) && !hasDotLine(message)) return withTerminator(message);
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

const CRLF_DOT_CRLF = new Uint8Array([13, 10, 46, 13, 10]);

function withTerminator(message: Uint8Array): Uint8Array {
  const endsWithCrlf = message.length === 0 ||
    (message[message.length - 2] === 13 && message[message.length - 1] === 10);
  const tail = endsWithCrlf ? CRLF_DOT_CRLF.subarray(2) : CRLF_DOT_CRLF;
  const out = new Uint8Array(message.length + tail.length);
  out.set(message, 0);
  out.set(tail, message.length);
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
  return !isAscii(message); // native and vectorised: a JS byte loop costs ~40x more on 50 KB
}
