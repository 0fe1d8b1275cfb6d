/**
 * Text helpers for the DSN builder: dates, field sanitising and folding,
 * line wrapping, base64 bodies, RFC 6533 address encoding. No I/O.
 */

export const CRLF = "\r\n";
/** RFC 5322 2.1.1: the hard limit on a line, CRLF not counted. */
export const MAX_LINE = 998;
/** RFC 5322 2.1.1: the line length we aim for when we can choose. */
const SOFT_LINE = 78;

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** RFC 5322 3.3 date-time in UTC: "Thu, 13 Feb 2025 09:05:00 +0000". */
export function rfc5322Date(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`not a time: ${String(ms)}`);
  const d = new Date(ms);
  const p2 = (n: number) => String(n).padStart(2, "0");
  return (
    `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`
  );
}

/**
 * One line of text from untrusted input (remote replies, addresses): every
 * control character (C0, DEL, C1, Unicode line/paragraph separators) becomes a
 * space, runs of white space collapse. Nothing that ends a line survives, so
 * the value cannot start a new header field.
 */
export function oneLine(text: string): string {
  return text
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

/** oneLine, then anything outside printable US-ASCII becomes "?" (the delivery-status part is 7-bit). */
export function asciiLine(text: string): string {
  return oneLine(text).replace(/[^\x20-\x7e]/g, "?");
}

/** Cut to at most `max` characters, marking the cut. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/**
 * RFC 6533 3: an address for a DSN field. ASCII addresses keep the "rfc822"
 * type; an SMTPUTF8 address uses the "utf-8" type in its 7-bit xtext form,
 * where each non-ASCII character and "+", "=", "\" become \x{HEX}.
 */
export function dsnAddress(address: string): string {
  const clean = oneLine(address);
  if (/^[\x20-\x7e]*$/.test(clean)) return `rfc822; ${clean}`;
  let out = "";
  for (const ch of clean) {
    const cp = ch.codePointAt(0) ?? 0;
    out += cp > 0x7e || ch === "+" || ch === "=" || ch === "\\" || cp < 0x21
      ? `\\x{${cp.toString(16).toUpperCase()}}`
      : ch;
  }
  return `utf-8; ${out}`;
}

/**
 * A header-style field, folded at spaces to about 78 columns (RFC 5322 2.2.3).
 * A word too long for any line (over MAX_LINE) is split hard: unfolding then
 * adds a space inside it, which is acceptable for diagnostic text and keeps
 * every line within the 998-octet limit.
 */
export function foldField(name: string, value: string): string {
  const words = oneLine(value).split(" ").filter((w) => w.length > 0);
  const pieces: string[] = [];
  for (const word of words) {
    for (let i = 0; i < word.length; i += MAX_LINE - 2) pieces.push(word.slice(i, i + MAX_LINE - 2));
  }
  const lines: string[] = [];
  let line = `${name}:`;
  let empty = true; // no word on this line yet: the next one goes here whatever its length
  for (const piece of pieces) {
    if (!empty && line.length + 1 + piece.length > SOFT_LINE) {
      lines.push(line);
      line = "";
    }
    line += ` ${piece}`;
    empty = false;
  }
  lines.push(line);
  return lines.join(CRLF) + CRLF;
}

/** Word-wrap one paragraph to `width` columns; words longer than a line are split. */
export function wrap(text: string, width = 76, indent = ""): string[] {
  const lines: string[] = [];
  let line = indent;
  for (const word of oneLine(text).split(" ")) {
    if (word === "") continue;
    for (let i = 0; i < word.length; i += width) {
      const piece = word.slice(i, i + width);
      if (line.length > indent.length && line.length + 1 + piece.length > width) {
        lines.push(line);
        line = indent;
      }
      line += (line.length > indent.length ? " " : "") + piece;
    }
  }
  if (line.length > indent.length || lines.length === 0) lines.push(line);
  return lines;
}

/** RFC 2045 6.8: base64 in lines of 76 characters, each ending in CRLF. */
export function base64Lines(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  let out = "";
  for (let i = 0; i < b64.length; i += 76) out += b64.slice(i, i + 76) + CRLF;
  return out;
}

/** The human-readable part: 7bit when plain ASCII, else UTF-8 in base64. */
export function textPart(text: string): { headers: string; body: Uint8Array } {
  const bytes = new TextEncoder().encode(text);
  if (/^[\x00-\x7f]*$/.test(text)) {
    return {
      headers:
        "Content-Type: text/plain; charset=us-ascii\r\nContent-Description: Notification\r\nContent-Transfer-Encoding: 7bit\r\n",
      body: bytes,
    };
  }
  return {
    headers:
      "Content-Type: text/plain; charset=utf-8\r\nContent-Description: Notification\r\nContent-Transfer-Encoding: base64\r\n",
    body: new TextEncoder().encode(base64Lines(bytes)),
  };
}
