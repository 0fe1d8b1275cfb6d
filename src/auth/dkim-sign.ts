/**
 * DKIM signing (RFC 6376; Ed25519-SHA256 RFC 8463), on the message's octets
 * (./dkim-canon.ts): one pass over the header section, the body hash
 * computed once for every key, the signed header fields canonicalized once,
 * then per key only its DKIM-Signature field and the signature itself.
 *
 * Policy: relaxed/relaxed, SHA-256, no l= (a body length limit lets anyone
 * append content under our signature).
 */
import { createHash, sign, type KeyObject } from "node:crypto";
import { domainToASCII } from "node:url";
import { bodyHash, ByteSink, relaxedHeader, splitMessage, type HeaderField, type MessageParts } from "./dkim-canon.ts";
import { parseTagList, type DkimAlgorithm } from "./dkim-keys.ts";
import { signedField, unsignedField } from "./signature-field.ts";
import { headerSectionEnd } from "../ingress/headers.ts";

/** Signed when present, each instance (RFC 6376 5.4.1). */
export const SIGNED_HEADERS = [
  "From",
  "To",
  "Cc",
  "Subject",
  "Date",
  "Message-ID",
  "Reply-To",
  "MIME-Version",
  "Content-Type",
  "List-Unsubscribe",
] as const;

/**
 * Listed once more than present (RFC 6376 5.4.2, 8.15): a copy added later
 * (a second From or Subject above ours) then breaks the signature instead of
 * being shown to the reader under it.
 */
export const OVERSIGNED_HEADERS = ["From", "Subject"] as const;

export interface SigningKey {
  /** d=, A-label, lower case. */
  readonly domain: string;
  /** s= */
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly privateKey: KeyObject;
  /** RSA only: signs as sign("sha256", data, privateKey) does, faster (OpenSSL, src/platform/openssl.ts). */
  readonly rsaSha256?: (data: Uint8Array) => Uint8Array;
}

/**
 * The header fields to sign, every instance of each name in `signing`,
 * bottom-up per name as verifiers pick them (RFC 6376 5.4.2), and the h=
 * names, `oversigned` added once more.
 */
export function signedFields(
  fields: readonly HeaderField[],
  signing: readonly string[] = SIGNED_HEADERS,
  oversigned: readonly string[] = OVERSIGNED_HEADERS,
): { names: string[]; fields: HeaderField[] } {
  const names: string[] = [];
  const picked: HeaderField[] = [];
  for (const name of signing) {
    const lower = name.toLowerCase();
    for (let i = fields.length - 1; i >= 0; i--) {
      if (fields[i]!.name === lower) {
        names.push(name);
        picked.push(fields[i]!);
      }
    }
  }
  // An h= name with no instance left stands for the null string (RFC 6376 5.4).
  names.push(...oversigned);
  return { names, fields: picked };
}

/**
 * The DKIM-Signature fields for `message`, one per key, each ending in CRLF,
 * to be put on top of it.
 */
export function dkimSignatures(message: Uint8Array, keys: readonly SigningKey[], now: number, parts: MessageParts = splitMessage(message)): string {
  if (keys.length === 0) return "";
  const signed = signedFields(parts.fields);
  const headers = new ByteSink(1024);
  for (const field of signed.fields) relaxedHeader(message, field, headers);
  const bh = bodyHash(message, parts.bodyStart, "relaxed", "sha256");
  const t = String(Math.floor(now / 1000));
  let out = "";
  for (const key of keys) {
    const { head, canonical } = unsignedField("DKIM-Signature", [
      ["v", "1"],
      ["a", `${key.algorithm}-sha256`],
      ["c", "relaxed/relaxed"],
      ["d", key.domain],
      ["s", key.selector],
      ["t", t],
      ["h", signed.names.join(":")],
      ["bh", bh],
    ]);
    const data = Buffer.concat([headers.bytes(), canonical]);
    // RSA signs the data with SHA-256; Ed25519 signs its SHA-256 hash (RFC 8463 3).
    const signature =
      key.algorithm === "ed25519"
        ? sign(null, createHash("sha256").update(data).digest(), key.privateKey)
        : (key.rsaSha256?.(data) ?? sign("sha256", data, key.privateKey));
    out += `${signedField(head, Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString("base64"))}\r\n`;
  }
  return out;
}

/** `message` with `keys` signatures on top, skipping keys whose d= and s= already signed it. */
export function signMessage(message: Uint8Array, keys: readonly SigningKey[], now: number): Uint8Array {
  const parts = splitMessage(message);
  const existing = existingSignatures(message, parts);
  const wanted = existing.size === 0 ? keys : keys.filter((k) => !existing.has(`${k.domain} ${k.selector.toLowerCase()}`));
  const fields = dkimSignatures(message, wanted, now, parts);
  if (fields === "") return message;
  const out = new Uint8Array(fields.length + message.length);
  // The fields are ASCII: one octet a character.
  out.set(Buffer.from(fields, "latin1"), 0);
  out.set(message, fields.length);
  return out;
}

const utf8 = new TextDecoder("utf-8");

/**
 * The header section's fields, unfolded, as UTF-8 text (SMTPUTF8 headers are
 * UTF-8, RFC 6532); with `named` (lower-case letters, digits and "-"), only
 * the fields of that name, read the same way. A line ends at LF or CRLF; a
 * line that starts with a blank continues the field before it.
 */
export function headerFields(message: Uint8Array, named?: string): { name: string; value: string }[] {
  const text = utf8.decode(message.subarray(0, headerSectionEnd(message)));
  const fields: { name: string; value: string }[] = [];
  /** Whether a continuation line belongs to a field kept; undefined before the first field. */
  let kept: boolean | undefined;
  // By offsets into the text: only the values kept are ever cut out of it.
  for (let start = 0; start <= text.length; ) {
    const lf = text.indexOf("\n", start);
    const end = lf < 0 ? text.length : text.charCodeAt(lf - 1) === 13 ? lf - 1 : lf;
    const first = text.charCodeAt(start);
    if ((first === 32 || first === 9) && kept !== undefined) {
      if (kept) fields[fields.length - 1]!.value += text.slice(start, end);
    } else {
      const colon = colonIn(text, start, end);
      if (colon > start) {
        kept = named === undefined || namesField(text, start, colon, named);
        if (kept) fields.push({ name: named ?? text.slice(start, colon).trim().toLowerCase(), value: text.slice(colon + 1, end) });
      }
    }
    start = lf < 0 ? text.length + 1 : lf + 1;
  }
  return fields;
}

/** The offset of the first ":" in text[start, end), or -1 (a scan bounded by the line, not to the next ":" anywhere). */
function colonIn(text: string, start: number, end: number): number {
  for (let i = start; i < end; i++) if (text.charCodeAt(i) === 58) return i;
  return -1;
}

/**
 * Whether text[start, colon), trimmed and in lower case, is `name` (lower-case
 * letters, digits and "-"). A name of printable ASCII has nothing to trim and
 * lowers with `| 0x20`, so the string need not be built: lowering is most of
 * the cost of reading a header.
 */
function namesField(text: string, start: number, colon: number, name: string): boolean {
  for (let i = start; i < colon; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) return text.slice(start, colon).trim().toLowerCase() === name;
  }
  if (colon - start !== name.length) return false;
  for (let i = start; i < colon; i++) if ((text.charCodeAt(i) | 0x20) !== name.charCodeAt(i - start)) return false;
  return true;
}

/** "d s" (lower case) of every DKIM-Signature the message already carries. */
export function existingSignatures(message: Uint8Array, parts: MessageParts = splitMessage(message)): Set<string> {
  const found = new Set<string>();
  for (const field of parts.fields) {
    if (field.name !== "dkim-signature") continue;
    const tags = parseTagList(utf8.decode(message.subarray(field.colon + 1, field.end)));
    const d = tags.get("d");
    const s = tags.get("s");
    if (d !== undefined && s !== undefined) found.add(`${asciiDomain(d)} ${s.toLowerCase()}`);
  }
  return found;
}

/** Lower case, no trailing dot, IDN as A-labels ("" when it cannot be converted). */
export function asciiDomain(raw: string): string {
  const text = raw.trim().toLowerCase().replace(/\.$/, "");
  return /^[\x00-\x7f]*$/.test(text) ? text : domainToASCII(text);
}
