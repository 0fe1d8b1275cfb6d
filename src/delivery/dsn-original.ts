/**
 * The third part of a DSN: the returned original message (RFC 3462/6522),
 * whole as message/rfc822 or only its header section as text/rfc822-headers.
 */
import { headerSection } from "../core/header-section.ts";
import { base64Lines, MAX_LINE } from "./dsn-format.ts";

export interface ReturnedPart {
  /** Headers of the MIME part, each ending in CRLF. */
  readonly headers: string;
  /** The part's body, ending in CRLF (or empty). */
  readonly body: Uint8Array;
  /** The body holds octets above 127: the enclosing multipart must be labelled 8bit. */
  readonly eightBit: boolean;
  /** Only the header section is returned. */
  readonly headersOnly: boolean;
  /** Why the whole message is not returned, for the human-readable part. */
  readonly reason?: string;
}

const CR = 13;
const LF = 10;

/** Every line ending becomes CRLF (bare LF and bare CR too), and the result ends in CRLF. */
export function toCrlf(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(input.length * 2 + 2);
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    const b = input[i]!;
    if (b === CR) {
      if (input[i + 1] === LF) i++;
      out[n++] = CR;
      out[n++] = LF;
    } else if (b === LF) {
      out[n++] = CR;
      out[n++] = LF;
    } else {
      out[n++] = b;
    }
  }
  if (n > 0 && !(out[n - 2] === CR && out[n - 1] === LF)) {
    out[n++] = CR;
    out[n++] = LF;
  }
  return out.subarray(0, n);
}

interface Shape {
  eightBit: boolean;
  /** NUL or a line over 998 octets: not valid as 7bit/8bit MIME content. */
  needsBinary: boolean;
}

function shape(crlf: Uint8Array): Shape {
  let eightBit = false;
  let needsBinary = false;
  let lineLength = 0;
  for (let i = 0; i < crlf.length; i++) {
    const b = crlf[i]!;
    if (b === CR && crlf[i + 1] === LF) {
      lineLength = 0;
      i++;
      continue;
    }
    if (b === 0) needsBinary = true;
    if (b > 127) eightBit = true;
    if (++lineLength > MAX_LINE) needsBinary = true;
  }
  return { eightBit, needsBinary };
}

/** Cut a header section to at most `max` octets, at a line end. */
function capHeaders(headers: Uint8Array, max: number): Uint8Array {
  if (headers.length <= max) return headers;
  let end = 0;
  for (let i = 0; i + 1 < max; i++) {
    if (headers[i] === CR && headers[i + 1] === LF) end = i + 2;
  }
  return headers.subarray(0, end);
}

/**
 * Choose and build the returned part. message/rfc822 may only be 7bit or 8bit
 * here (RFC 2046 5.2.1 forbids base64; binary needs BINARYMIME end to end), so
 * an original with NUL or over-long lines falls back to its headers, which as
 * text/* may be base64-encoded when they themselves are not line-clean.
 */
export function returnedPart(original: Uint8Array, ret: "FULL" | "HDRS", maxBytes: number): ReturnedPart {
  const message = toCrlf(original);
  let reason: string | undefined;
  if (ret === "FULL") {
    if (message.length > maxBytes) {
      reason = `the original message is ${message.length} bytes, more than the ${maxBytes} returned in full`;
    } else {
      const s = shape(message);
      if (!s.needsBinary) {
        return {
          headers: `Content-Type: message/rfc822\r\nContent-Description: Undelivered Message\r\n` +
            `Content-Transfer-Encoding: ${s.eightBit ? "8bit" : "7bit"}\r\n`,
          body: message,
          eightBit: s.eightBit,
          headersOnly: false,
        };
      }
      reason = "the original message has lines too long or NUL octets to be returned whole";
    }
  }
  const headers = capHeaders(headerSection(message), maxBytes);
  const s = shape(headers);
  const description = "Content-Type: text/rfc822-headers\r\nContent-Description: Undelivered Message Headers\r\n";
  if (s.needsBinary) {
    return {
      headers: `${description}Content-Transfer-Encoding: base64\r\n`,
      body: new TextEncoder().encode(base64Lines(headers)),
      eightBit: false,
      headersOnly: true,
      reason,
    };
  }
  return {
    headers: `${description}Content-Transfer-Encoding: ${s.eightBit ? "8bit" : "7bit"}\r\n`,
    body: headers,
    eightBit: s.eightBit,
    headersOnly: true,
    reason,
  };
}
