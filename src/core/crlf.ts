import { Buffer } from "node:buffer";

/**
 * Line breaks in stored mail. The queue holds messages whose every line
 * break is CRLF (RFC 5322 2.3, RFC 5321 2.3.8), as Postfix's cleanup does:
 * DATA refuses bare CR and LF, and every other way in (BDAT, HTTP) passes
 * through toCrlf. Signing then covers what goes on the wire, and delivery
 * only has to dot-stuff.
 */

/** True when every CR is followed by LF and every LF preceded by CR. Native searches, not a byte loop. */
export function hasOnlyCrlf(message: Uint8Array): boolean {
  for (let lf = message.indexOf(10); lf !== -1; lf = message.indexOf(10, lf + 1)) {
    if (message[lf - 1] !== 13) return false;
  }
  for (let cr = message.indexOf(13); cr !== -1; cr = message.indexOf(13, cr + 1)) {
    if (message[cr + 1] !== 10) return false;
  }
  return true;
}

/** The message with each bare CR or LF turned into CRLF; the same array when there is none. */
export function toCrlf(message: Uint8Array): Uint8Array {
  if (hasOnlyCrlf(message)) return message;
  const text = Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString("latin1");
  return new Uint8Array(Buffer.from(text.replace(/\r\n|\r|\n/g, "\r\n"), "latin1"));
}

/** True when some line starts with "." (RFC 5321 4.5.2 transparency is needed). */
export function hasDotLine(message: Uint8Array): boolean {
  return message[0] === 46 ||
    Buffer.from(message.buffer, message.byteOffset, message.byteLength).indexOf(LF_DOT) !== -1;
}

const LF_DOT = Buffer.from("\n.", "latin1");
