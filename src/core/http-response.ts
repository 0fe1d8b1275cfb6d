/**
 * Just enough of an HTTP/1.1 response parser (RFC 9112) for the relay's own
 * clients (the MTA-STS policy fetch, RFC 8461 3.3; webhook deliveries):
 * status line, header fields, and a body framed by Content-Length, chunked
 * transfer coding or the end of the connection, with limits on every part.
 * It is called again on the whole buffer as bytes arrive.
 */

export interface HttpResponse {
  readonly status: number;
  /** The minor version of the status line: HTTP/1.0 or HTTP/1.1. */
  readonly minorVersion: 0 | 1;
  /** Field names lower-cased; repeated fields joined with ", " (RFC 9110 5.3). */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Uint8Array;
}

export type ParseState =
  | { readonly state: "incomplete" }
  | { readonly state: "error"; readonly reason: string }
  /** `length`: the response's bytes in the buffer; any after it are not part of it. */
  | { readonly state: "done"; readonly response: HttpResponse; readonly length: number };

export interface ResponseLimits {
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
}

const INCOMPLETE: ParseState = { state: "incomplete" };
const latin1 = new TextDecoder("latin1");

/** `eof`: the peer closed the connection, so a body without framing ends here. */
export function parseHttpResponse(buffer: Uint8Array, limits: ResponseLimits, eof: boolean): ParseState {
  const headEnd = indexOfBlankLine(buffer);
  if (headEnd < 0) {
    if (buffer.length > limits.maxHeaderBytes) {
      return { state: "error", reason: `response header exceeds ${limits.maxHeaderBytes} bytes` };
    }
    return eof ? { state: "error", reason: "connection closed before the response header ended" } : INCOMPLETE;
  }
  if (headEnd > limits.maxHeaderBytes) {
    return { state: "error", reason: `response header exceeds ${limits.maxHeaderBytes} bytes` };
  }
  const head = parseHead(latin1.decode(buffer.subarray(0, headEnd)));
  if ("reason" in head) return { state: "error", reason: head.reason };
  const bodyStart = headEnd + blankLineLength(buffer, headEnd);
  const rest = buffer.subarray(bodyStart);
  const done = (body: Uint8Array, bodyLength = body.length): ParseState => ({
    state: "done",
    response: { status: head.status, minorVersion: head.minorVersion, headers: head.headers, body },
    length: bodyStart + bodyLength,
  });
  if (head.status < 200) {
    // An interim answer (100 Continue, 103 Early Hints: RFC 9110 15.2) comes before the final one.
    const final = parseHttpResponse(rest, limits, eof);
    return final.state === "done" ? { ...final, length: bodyStart + final.length } : final;
  }
  // RFC 9112 6.3: these never have a body, whatever the fields say.
  if (head.status === 204 || head.status === 304) return done(new Uint8Array(0));

  const te = head.headers.get("transfer-encoding");
  const cl = head.headers.get("content-length");
  if (te !== undefined) {
    if (cl !== undefined) return { state: "error", reason: "both Transfer-Encoding and Content-Length" };
    if (te.toLowerCase() !== "chunked") return { state: "error", reason: `unsupported Transfer-Encoding "${te}"` };
    const chunked = decodeChunked(rest, limits.maxBodyBytes);
    if (chunked.state === "done") return done(chunked.body, chunked.length);
    if (chunked.state === "error") return chunked;
    return eof ? { state: "error", reason: "connection closed inside the chunked body" } : INCOMPLETE;
  }
  if (cl !== undefined) {
    if (!/^[0-9]{1,15}$/.test(cl)) return { state: "error", reason: `bad Content-Length "${cl}"` };
    const length = Number(cl);
    if (length > limits.maxBodyBytes) {
      return { state: "error", reason: `body of ${length} bytes exceeds ${limits.maxBodyBytes}` };
    }
    if (rest.length >= length) return done(rest.slice(0, length));
    return eof
      ? { state: "error", reason: `connection closed after ${rest.length} of ${length} body bytes` }
      : INCOMPLETE;
  }
  if (rest.length > limits.maxBodyBytes) return { state: "error", reason: `body exceeds ${limits.maxBodyBytes} bytes` };
  return eof ? done(rest.slice()) : INCOMPLETE;
}

/** Offset of the CRLF CRLF (or LF LF) that ends the header section, or -1. */
function indexOfBlankLine(buffer: Uint8Array): number {
  for (let i = 0; i + 1 < buffer.length; i++) {
    if (buffer[i] !== 0x0a) continue;
    if (buffer[i + 1] === 0x0a) return i;
    if (buffer[i + 1] === 0x0d && buffer[i + 2] === 0x0a) return i;
  }
  return -1;
}

/** Bytes from the header's last LF through the blank line. */
function blankLineLength(buffer: Uint8Array, at: number): number {
  return buffer[at + 1] === 0x0d ? 3 : 2;
}

function parseHead(
  text: string,
): { status: number; minorVersion: 0 | 1; headers: Map<string, string> } | { reason: string } {
  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  const statusLine = lines[0] ?? "";
  const match = /^HTTP\/1\.([01]) ([0-9]{3})(?: .*)?$/.exec(statusLine);
  if (!match) return { reason: `bad status line "${statusLine.slice(0, 100)}"` };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      return { reason: `bad header line "${line.slice(0, 100)}"` };
    }
    const value = line.slice(colon + 1).trim();
    const prior = headers.get(name);
    headers.set(name, prior === undefined ? value : `${prior}, ${value}`);
  }
  return { status: Number(match[2]), minorVersion: match[1] === "1" ? 1 : 0, headers };
}

/** `length`: the bytes of the chunked body, through the trailer's blank line. */
type Chunked =
  | { state: "incomplete" }
  | { state: "error"; reason: string }
  | { state: "done"; body: Uint8Array; length: number };

/** RFC 9112 7.1: hex size [; extensions] CRLF, data CRLF, ..., "0" CRLF, trailer fields, CRLF. */
function decodeChunked(bytes: Uint8Array, maxBody: number): Chunked {
  const parts: Uint8Array[] = [];
  let total = 0;
  let pos = 0;
  for (;;) {
    const lineEnd = bytes.indexOf(0x0a, pos);
    if (lineEnd < 0) {
      return bytes.length - pos > 1024
        ? { state: "error", reason: "chunk size line too long" }
        : { state: "incomplete" };
    }
    const sizeLine = latin1.decode(bytes.subarray(pos, lineEnd)).replace(/\r$/, "");
    const size = /^([0-9a-fA-F]{1,8})[ \t]*(?:;.*)?$/.exec(sizeLine);
    if (!size) return { state: "error", reason: `bad chunk size line "${sizeLine.slice(0, 40)}"` };
    const length = parseInt(size[1]!, 16);
    pos = lineEnd + 1;
    if (length === 0) {
      // Trailer fields until an empty line; they are ignored.
      for (;;) {
        const end = bytes.indexOf(0x0a, pos);
        if (end < 0) {
          return bytes.length - pos > 4096 ? { state: "error", reason: "trailer too long" } : { state: "incomplete" };
        }
        const line = latin1.decode(bytes.subarray(pos, end)).replace(/\r$/, "");
        pos = end + 1;
        if (line === "") return { state: "done", body: concat(parts, total), length: pos };
      }
    }
    total += length;
    if (total > maxBody) return { state: "error", reason: `body exceeds ${maxBody} bytes` };
    if (bytes.length < pos + length + 1) return { state: "incomplete" };
    parts.push(bytes.subarray(pos, pos + length));
    pos += length;
    if (bytes[pos] === 0x0d) pos++;
    if (pos >= bytes.length) return { state: "incomplete" };
    if (bytes[pos] !== 0x0a) return { state: "error", reason: "chunk data not followed by CRLF" };
    pos++;
  }
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
