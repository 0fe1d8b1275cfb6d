/** Header-section edits for inbound authentication, on raw message bytes. */

const latin1 = new TextDecoder("latin1");

/** Byte offset of the body: just after the CRLF CRLF that ends the header section (the length when there is none). */
function bodyStart(message: Uint8Array): number {
  if (message[0] === 13 && message[1] === 10) return 2;
  for (let i = 0; i + 3 < message.length; i++) {
    if (message[i] === 13 && message[i + 1] === 10 && message[i + 2] === 13 && message[i + 3] === 10) return i + 4;
  }
  return message.length;
}

/** The header fields as [start, end) byte ranges, each with its continuation lines and final CRLF. */
function fieldRanges(message: Uint8Array): { start: number; end: number; name: string }[] {
  const end = bodyStart(message);
  const fields: { start: number; end: number; name: string }[] = [];
  let pos = 0;
  while (pos < end) {
    let lineEnd = pos;
    // A field runs until a CRLF that is not followed by WSP (RFC 5322 2.2.3).
    for (;;) {
      while (lineEnd < end && !(message[lineEnd] === 13 && message[lineEnd + 1] === 10)) lineEnd++;
      lineEnd = Math.min(lineEnd + 2, end);
      if (lineEnd >= end || (message[lineEnd] !== 32 && message[lineEnd] !== 9)) break;
    }
    const text = latin1.decode(message.subarray(pos, Math.min(lineEnd, pos + 200)));
    const colon = text.indexOf(":");
    fields.push({ start: pos, end: lineEnd, name: colon > 0 ? text.slice(0, colon).trim().toLowerCase() : "" });
    pos = lineEnd;
  }
  return fields;
}

/** The authserv-id of an Authentication-Results value (RFC 8601 2.2), lower-case, comments skipped. */
export function authservId(value: string): string {
  const text = value.replace(/\\[()]/g, "").replace(/\([^()]*\)/g, " ").trim();
  const match = /^([^\s;]+)/.exec(text);
  return (match?.[1] ?? "").toLowerCase().replace(/\.$/, "");
}

/**
 * Drops every Authentication-Results field whose authserv-id is ours: one that
 * arrives from outside claims a check we did not make (RFC 8601 5).
 * ARC-Authentication-Results are part of ARC sets and are left alone.
 */
export function removeForgedAuthResults(message: Uint8Array, hostname: string): { message: Uint8Array; removed: number } {
  const ours = hostname.toLowerCase().replace(/\.$/, "");
  const drop = fieldRanges(message).filter((f) => {
    if (f.name !== "authentication-results") return false;
    const raw = latin1.decode(message.subarray(f.start, f.end));
    return authservId(raw.slice(raw.indexOf(":") + 1).replace(/\r\n/g, "")) === ours;
  });
  if (drop.length === 0) return { message, removed: 0 };
  const kept: Uint8Array[] = [];
  let pos = 0;
  for (const f of drop) {
    kept.push(message.subarray(pos, f.start));
    pos = f.end;
  }
  kept.push(message.subarray(pos));
  const out = new Uint8Array(kept.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of kept) {
    out.set(part, at);
    at += part.length;
  }
  return { message: out, removed: drop.length };
}

/** Puts header fields (each without its CRLF; folded lines use CRLF WSP) on top of the message. */
export function prependFields(message: Uint8Array, fields: readonly string[]): Uint8Array {
  if (fields.length === 0) return message;
  const head = new TextEncoder().encode(fields.map((f) => `${f}\r\n`).join(""));
  const out = new Uint8Array(head.length + message.length);
  out.set(head, 0);
  out.set(message, head.length);
  return out;
}
