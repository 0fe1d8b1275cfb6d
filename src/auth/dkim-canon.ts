/**
 * DKIM canonicalization on octets (RFC 6376 3.4), shared by signing, ARC
 * sealing and inbound verification. Header fields and bodies stay bytes
 * from start to end: a field value may hold UTF-8 (RFC 6532), and whitespace
 * here is WSP, SP and HTAB only (RFC 5234). A regular expression's `\s` over
 * the octets as latin1 text would also take the 0xA0 octet inside a UTF-8
 * character (à is C3 A0) and VT, FF, 0x85 for whitespace, which is how
 * mailauth's canonicalization differs from dkimpy's, OpenDKIM's and the
 * RFC's: what is signed here is what receivers verify.
 *
 * Line ends are CRLF; a bare LF is read as CRLF (the queue's form has only
 * CRLF; a message from elsewhere may not), a bare CR is an ordinary octet.
 */
import { createHash, type Hash } from "node:crypto";
import { type HeaderField, indexIn } from "../core/header-section.ts";

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const SEMICOLON = 59;
const EQUALS = 61;
const CRLF = new Uint8Array([CR, LF]);
const SPACE = new Uint8Array([SP]);

export type Canonicalization = "simple" | "relaxed";
export type HashAlgorithm = "sha256" | "sha1";

const isWsp = (octet: number | undefined) => octet === SP || octet === HTAB;

/** A growing byte buffer: canonical forms are written here, then hashed or signed once. */
export class ByteSink {
  private buffer: Uint8Array;
  length = 0;

  constructor(capacity = 1024) {
    this.buffer = new Uint8Array(capacity);
  }

  push(octet: number): void {
    if (this.length === this.buffer.length) this.grow(1);
    this.buffer[this.length++] = octet;
  }

  append(octets: Uint8Array, start = 0, end = octets.length): void {
    const count = end - start;
    if (this.length + count > this.buffer.length) this.grow(count);
    this.buffer.set(octets.subarray(start, end), this.length);
    this.length += count;
  }

  /** A view of what was written (valid until the next write). */
  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  private grow(needed: number): void {
    const next = new Uint8Array(Math.max(this.buffer.length * 2, this.length + needed));
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }
}

/**
 * The "relaxed" form of a header field (RFC 6376 3.4.2): name in lower case,
 * continuation lines unfolded, every run of WSP one SP, no WSP at the end of
 * the value nor around the colon; CRLF after it unless `last` (the signature
 * field itself is hashed without one, RFC 6376 3.7).
 */
export function relaxedHeader(message: Uint8Array, field: HeaderField, out: ByteSink, last = false): void {
  const { start, colon, end } = field;
  for (let i = start; i < colon; i++) {
    const octet = message[i]!;
    if (octet === SP || octet === HTAB || octet === CR || octet === LF) continue;
    out.push(octet >= 65 && octet <= 90 ? octet + 32 : octet);
  }
  if (colon < end) {
    out.push(COLON);
    let space = false;
    let seen = false;
    for (let i = colon + 1; i < end; i++) {
      const octet = message[i]!;
      if (octet === SP || octet === HTAB) {
        space = seen;
      } else if (octet === LF || (octet === CR && message[i + 1] === LF)) {
        // Unfolding removes the line break; the WSP after it stays WSP.
      } else {
        if (space) out.push(SP);
        space = false;
        seen = true;
        out.push(octet);
      }
    }
  }
  if (!last) out.append(CRLF);
}

/** The "simple" form of a header field (RFC 6376 3.4.1): as it is, with CRLF line breaks. */
export function simpleHeader(message: Uint8Array, field: HeaderField, out: ByteSink, last = false): void {
  let from = field.start;
  for (let lf = message.indexOf(LF, from); lf >= 0 && lf < field.end; lf = message.indexOf(LF, lf + 1)) {
    if (lf > from && message[lf - 1] === CR) continue;
    out.append(message, from, lf);
    out.append(CRLF);
    from = lf + 1;
  }
  out.append(message, from, field.end);
  if (!last) out.append(CRLF);
}

export function canonicalHeader(
  canonicalization: Canonicalization,
  message: Uint8Array,
  field: HeaderField,
  out: ByteSink,
  last = false,
): void {
  if (canonicalization === "relaxed") relaxedHeader(message, field, out, last);
  else simpleHeader(message, field, out, last);
}

/**
 * The signature field as it is hashed (RFC 6376 3.7; ARC, RFC 8617 4.1.1 and
 * 4.1.2): canonicalized, without a final CRLF, with the value of its b= tag
 * (and the whitespace around it) deleted.
 */
export function signatureHeader(
  canonicalization: Canonicalization,
  message: Uint8Array,
  field: HeaderField,
  out: ByteSink,
): void {
  const b = tagValueRange(message, field, "b");
  if (b === undefined) return canonicalHeader(canonicalization, message, field, out, true);
  const without = new Uint8Array(field.end - field.start - (b.end - b.start));
  without.set(message.subarray(field.start, b.start), 0);
  without.set(message.subarray(b.end, field.end), b.start - field.start);
  canonicalHeader(
    canonicalization,
    without,
    { name: field.name, start: 0, colon: field.colon - field.start, end: without.length },
    out,
    true,
  );
}

/**
 * Octets [start, end) of a tag's value in a tag-list field (RFC 6376 3.2):
 * from just after "=" to the ";" that ends it or the end of the field, so
 * with the whitespace around the value. Undefined without that tag.
 */
export function tagValueRange(
  message: Uint8Array,
  field: HeaderField,
  tag: string,
): { start: number; end: number } | undefined {
  for (let spec = field.colon + 1; spec < field.end;) {
    const specEnd = indexIn(message, SEMICOLON, spec, field.end);
    const eq = indexIn(message, EQUALS, spec, specEnd);
    if (eq < specEnd && nameIs(message, spec, eq, tag)) return { start: eq + 1, end: specEnd };
    spec = specEnd + 1;
  }
  return undefined;
}

/** Whether octets [start, end), without the FWS around them, are `name`. */
function nameIs(message: Uint8Array, start: number, end: number, name: string): boolean {
  const blank = (octet: number) => octet === SP || octet === HTAB || octet === CR || octet === LF;
  while (start < end && blank(message[start]!)) start++;
  while (end > start && blank(message[end - 1]!)) end--;
  if (end - start !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (message[start + i] !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * A hash fed with the canonical body in pieces; with `limit` (the l= tag),
 * only its first `limit` octets count.
 */
class BodyHasher {
  private readonly hash: Hash;
  private room: number;
  constructor(algorithm: HashAlgorithm, limit: number | undefined) {
    this.hash = createHash(algorithm);
    this.room = limit ?? Number.POSITIVE_INFINITY;
  }
  update(octets: Uint8Array, start: number, end: number): void {
    const count = Math.min(end - start, this.room);
    if (count <= 0) return;
    this.hash.update(octets.subarray(start, start + count));
    this.room -= count;
  }
  digest(): string {
    return this.hash.digest("base64");
  }
}

/**
 * The body hash (bh=, RFC 6376 3.7) of the body at message[bodyStart..],
 * canonicalized on the way (RFC 6376 3.4.3 simple, 3.4.4 relaxed) in one
 * pass: the octets that stay as they are go to the hash as views of the
 * message, so nothing is copied.
 */
export function bodyHash(
  message: Uint8Array,
  bodyStart: number,
  canonicalization: Canonicalization,
  algorithm: HashAlgorithm,
  limit?: number,
): string {
  const hasher = new BodyHasher(algorithm, limit);
  const relaxed = canonicalization === "relaxed";
  // Everything after the last octet that is not a line break (nor WSP, relaxed) is trailing empty
  // lines (and the last line's trailing WSP): all of it becomes one CRLF.
  let end = message.length;
  while (end > bodyStart) {
    const octet = message[end - 1];
    if (octet === LF) end -= end - 2 >= bodyStart && message[end - 2] === CR ? 2 : 1;
    else if (relaxed && (octet === SP || octet === HTAB)) end--;
    else break;
  }
  if (end === bodyStart) {
    // An empty body: nothing (relaxed), one CRLF (simple).
    if (!relaxed) hasher.update(CRLF, 0, 2);
    return hasher.digest();
  }
  let from = bodyStart;
  for (let i = bodyStart; i < end; i++) {
    const octet = message[i]!;
    if (octet === LF) {
      if (i > bodyStart && message[i - 1] === CR) continue;
      // A bare LF is a line break: CRLF.
      hasher.update(message, from, i);
      hasher.update(CRLF, 0, 2);
      from = i + 1;
    } else if (relaxed && (octet === SP || octet === HTAB)) {
      let run = i + 1;
      while (run < end && isWsp(message[run])) run++;
      const atLineEnd = message[run] === LF || (message[run] === CR && message[run + 1] === LF);
      if (atLineEnd) {
        // WSP at the end of a line goes.
        hasher.update(message, from, i);
        from = run;
      } else if (run - i > 1 || octet === HTAB) {
        // A run of WSP is one SP.
        hasher.update(message, from, i);
        hasher.update(SPACE, 0, 1);
        from = run;
      }
      i = run - 1;
    }
  }
  hasher.update(message, from, end);
  hasher.update(CRLF, 0, 2);
  return hasher.digest();
}
