/**
 * The header section of a message (RFC 5322 2.1, 2.2), read on its octets:
 * the one reading of it that ingress, DKIM signing and verification, ARC and
 * DSNs share, so that they agree on where the body starts and which fields
 * there are.
 *
 * A line ends at LF, with or without a CR before it (the queue's form has
 * only CRLF; a message from elsewhere may not, and DKIM signers and
 * receivers read a bare LF as a line end); a bare CR is an ordinary octet.
 * A line that starts with WSP continues the field above it (RFC 5322
 * 2.2.3); the first empty line ends the section.
 */
import { prepend } from "./headroom.ts";

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** One header field: octets [start, end) of the message, its line breaks inside, the last one not included. */
export interface HeaderField {
  /** The name in lower case (ASCII letters lowered), WSP before the colon left out; the whole line when it has no colon. */
  readonly name: string;
  readonly start: number;
  /** Where the colon is; `end` when there is none. */
  readonly colon: number;
  readonly end: number;
}

export interface MessageParts {
  /** The header fields, top to bottom. */
  readonly fields: HeaderField[];
  /** Where the body starts: after the empty line, or the message's length when it has none. */
  readonly bodyStart: number;
}

const isWsp = (octet: number | undefined) => octet === SP || octet === HTAB;
/** Octets left out of a field name: WSP, and the line breaks of a name folded before its colon. */
const isBlank = (octet: number) => octet === SP || octet === HTAB || octet === CR || octet === LF;
const asciiLower = (code: number) => (code >= 65 && code <= 90 ? code + 32 : code);

/** Whether the line at `pos` is empty (a lone LF or CRLF). */
const emptyLineAt = (message: Uint8Array, pos: number) =>
  message[pos] === LF || (message[pos] === CR && message[pos + 1] === LF);

/** Where the line after the one at `pos` starts: just after its LF, or the length. */
function lineAfter(message: Uint8Array, pos: number): number {
  const lf = message.indexOf(LF, pos);
  return lf < 0 ? message.length : lf + 1;
}

/** Where the field at `start` ends, continuation lines included: the start of the next line that is not one. */
function fieldAfter(message: Uint8Array, start: number): number {
  let next = lineAfter(message, start);
  while (next < message.length && isWsp(message[next])) next = lineAfter(message, next);
  return next;
}

/** The end of a field's octets that runs up to `next`: before its final line break. */
function fieldEnd(message: Uint8Array, start: number, next: number): number {
  if (message[next - 1] !== LF) return next;
  return next - 2 >= start && message[next - 2] === CR ? next - 2 : next - 1;
}

/** The offset of the empty line that ends the header section, or the length when there is none. */
function emptyLine(message: Uint8Array): number {
  let pos = 0;
  while (pos < message.length && !emptyLineAt(message, pos)) pos = lineAfter(message, pos);
  return pos;
}

/** Where the body starts past the empty line at `at` (the length when there is none). */
const pastEmptyLine = (
  message: Uint8Array,
  at: number,
) => (at >= message.length ? at : at + (message[at] === LF ? 1 : 2));

/** The header fields and where the body starts, in one pass over the header section. */
export function splitMessage(message: Uint8Array): MessageParts {
  const fields: HeaderField[] = [];
  let pos = 0;
  while (pos < message.length && !emptyLineAt(message, pos)) {
    const next = fieldAfter(message, pos);
    const end = fieldEnd(message, pos, next);
    const colon = indexIn(message, COLON, pos, end);
    fields.push({ name: fieldName(message, pos, colon), start: pos, colon, end });
    pos = next;
  }
  return { fields, bodyStart: pastEmptyLine(message, pos) };
}

/** Byte offset where the body starts (after the empty line), or the length when there is none. */
export function headerSectionEnd(message: Uint8Array): number {
  return pastEmptyLine(message, emptyLine(message));
}

/** The header section's octets: every field with its line break, without the empty line after them. */
export function headerSection(message: Uint8Array): Uint8Array {
  return message.subarray(0, emptyLine(message));
}

/**
 * Whether the header section has a field of this name (RFC 5322 2.2: names
 * are case-insensitive), read as splitMessage names fields, with a colon.
 * Compared on the octets in place: this runs for every message received.
 */
export function hasHeader(message: Uint8Array, name: string): boolean {
  for (let pos = 0; pos < message.length && !emptyLineAt(message, pos);) {
    const next = fieldAfter(message, pos);
    if (namedColon(message, pos, fieldEnd(message, pos, next), name) >= 0) return true;
    pos = next;
  }
  return false;
}

const utf8 = new TextDecoder("utf-8");

/**
 * The values of the fields of this name, top to bottom: the text after the
 * colon, unfolded (the line breaks taken out, RFC 5322 2.2.3), as UTF-8
 * (RFC 6532). Only the values asked for are decoded.
 */
export function headerValues(message: Uint8Array, name: string): string[] {
  const values: string[] = [];
  for (let pos = 0; pos < message.length && !emptyLineAt(message, pos);) {
    const next = fieldAfter(message, pos);
    const end = fieldEnd(message, pos, next);
    const colon = namedColon(message, pos, end, name);
    if (colon >= 0) values.push(valueText(message, colon, end));
    pos = next;
  }
  return values;
}

/** A field's value: the text after the colon, unfolded (the line breaks taken out, the WSP after them kept), as UTF-8. */
export function fieldValue(message: Uint8Array, field: HeaderField): string {
  return valueText(message, field.colon, field.end);
}

function valueText(message: Uint8Array, colon: number, end: number): string {
  const value = colon < end ? utf8.decode(message.subarray(colon + 1, end)) : "";
  return value.includes("\n") ? value.replace(/\r?\n/g, "") : value;
}

/** Where the line after a field starts: past the line break after its `end`. */
export function pastLineBreak(message: Uint8Array, field: HeaderField): number {
  const { end } = field;
  return message[end] === CR ? end + 2 : message[end] === LF ? end + 1 : end;
}

/**
 * `fields` (each without its line break; folded lines use CRLF WSP) on top of
 * the message, each ending in CRLF: in place when the message has room in
 * front (src/core/headroom.ts), else one copy.
 */
export function prependFields(message: Uint8Array, fields: readonly string[]): Uint8Array {
  if (fields.length === 0) return message;
  return prepend(message, new TextEncoder().encode(fields.map((f) => `${f}\r\n`).join("")));
}

/**
 * Where the colon of the field in [start, end) is when its name (blanks left
 * out, ASCII letters in any case) is `name`, else -1: splitMessage's
 * `name === name.toLowerCase()` with a colon, without building the name.
 */
function namedColon(message: Uint8Array, start: number, end: number, name: string): number {
  let matched = 0;
  for (let i = start; i < end; i++) {
    const octet = message[i]!;
    if (octet === COLON) return matched === name.length ? i : -1;
    if (isBlank(octet)) continue;
    if (matched === name.length || asciiLower(octet) !== asciiLower(name.charCodeAt(matched))) return -1;
    matched++;
  }
  return -1;
}

/** The first offset in [from, end) that holds `octet`, or `end`. */
export function indexIn(message: Uint8Array, octet: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (message[i] === octet) return i;
  return end;
}

/** Octets [start, colon) without WSP and line breaks, ASCII letters lowered. */
function fieldName(message: Uint8Array, start: number, colon: number): string {
  let name = "";
  for (let i = start; i < colon; i++) {
    const octet = message[i]!;
    if (!isBlank(octet)) name += String.fromCharCode(asciiLower(octet));
  }
  return name;
}
