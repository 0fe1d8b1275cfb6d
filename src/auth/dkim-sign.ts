/**
 * DKIM signing (RFC 6376; Ed25519-SHA256 RFC 8463) with mailauth's signer
 * pipeline: its header parser, line-break normalisation, relaxed body hash,
 * header canonicalisation and DKIM-Signature formatting. We choose the
 * signed header list ourselves, because mailauth's `dkimSign` lists only the
 * fields present and so cannot over-sign.
 *
 * Policy: relaxed/relaxed, SHA-256, no l= (a body length limit lets anyone
 * append content under our signature).
 */
import { createHash, sign, type KeyObject } from "node:crypto";
import { domainToASCII } from "node:url";
import { DkimSigner, type ParsedHeaderLine } from "mailauth/lib/dkim/dkim-signer.js";
import { generateCanonicalizedHeader } from "mailauth/lib/dkim/header/index.js";
import { formatSignatureHeaderLine, writeToStream } from "mailauth/lib/tools.js";
import { headerSectionEnd } from "../ingress/headers.ts";
import { parseTagList, type DkimAlgorithm } from "./dkim-keys.ts";

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

const CANONICALIZATION = "relaxed/relaxed";
/** The DkimSigner's key for the relaxed body hash with SHA-256 and no l=. */
const BODY_HASH_KEY = "relaxed:sha256:";

export interface SigningKey {
  /** d=, A-label, lower case. */
  readonly domain: string;
  /** s= */
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly privateKey: KeyObject;
}

/** The header fields to sign, bottom-up per name as verifiers pick them (RFC 6376 5.4.2), and the h= list. */
export function signedHeaderLines(parsed: readonly ParsedHeaderLine[]): { keys: string; headers: ParsedHeaderLine[] } {
  const names: string[] = [];
  const headers: ParsedHeaderLine[] = [];
  for (const name of SIGNED_HEADERS) {
    const lower = name.toLowerCase();
    for (let i = parsed.length - 1; i >= 0; i--) {
      if (parsed[i]!.key === lower) {
        names.push(name);
        headers.push(parsed[i]!);
      }
    }
  }
  // An h= name with no instance left stands for the null string (RFC 6376 5.4).
  names.push(...OVERSIGNED_HEADERS);
  return { keys: names.join(": "), headers };
}

class PlannedSigner extends DkimSigner {
  constructor(
    private readonly keys: readonly SigningKey[],
    private readonly signTime: Date,
  ) {
    super({
      canonicalization: CANONICALIZATION,
      signTime,
      // The parent only reads these to set up one body hash; finalize() below signs.
      signatureData: keys.map((k) => ({
        signingDomain: k.domain,
        selector: k.selector,
        privateKey: "-",
        algorithm: `${k.algorithm}-sha256`,
        canonicalization: CANONICALIZATION,
      })),
    });
  }

  override async finalize(): Promise<void> {
    if (!this.headers) return;
    const lines = signedHeaderLines(this.headers.parsed);
    const bodyHash = this.bodyHashes.get(BODY_HASH_KEY)?.hash ?? null;
    for (const key of this.keys) {
      const { canonicalizedHeader, dkimHeaderOpts } = generateCanonicalizedHeader("DKIM", lines, {
        signingDomain: key.domain,
        selector: key.selector,
        algorithm: `${key.algorithm}-sha256`,
        canonicalization: CANONICALIZATION,
        signTime: this.signTime,
        bodyHash,
      });
      // RSA signs the data with SHA-256; Ed25519 signs its SHA-256 hash (RFC 8463 3).
      const signature =
        key.algorithm === "rsa"
          ? sign("sha256", canonicalizedHeader, key.privateKey)
          : sign(null, createHash("sha256").update(canonicalizedHeader).digest(), key.privateKey);
      this.signatureHeaders.push(formatSignatureHeaderLine("DKIM", { ...dkimHeaderOpts, b: signature.toString("base64") }, true));
    }
  }
}

/**
 * The DKIM-Signature fields for `message`, one per key, each ending in CRLF,
 * to be put on top of it.
 */
export async function dkimSignatures(message: Uint8Array, keys: readonly SigningKey[], now: number): Promise<string> {
  if (keys.length === 0) return "";
  const signer = new PlannedSigner(keys, new Date(now));
  await writeToStream(signer, Buffer.from(withHeaderEnd(message)));
  return signer.signatureHeaders.map((h) => `${h}\r\n`).join("");
}

/** `message` with `keys` signatures on top, skipping keys whose d= and s= already signed it. */
export async function signMessage(message: Uint8Array, keys: readonly SigningKey[], now: number): Promise<Uint8Array> {
  const existing = existingSignatures(message);
  const wanted = keys.filter((k) => !existing.has(`${k.domain} ${k.selector.toLowerCase()}`));
  const fields = await dkimSignatures(message, wanted, now);
  if (fields === "") return message;
  const head = Buffer.from(fields, "latin1");
  const out = new Uint8Array(head.length + message.length);
  out.set(head, 0);
  out.set(message, head.length);
  return out;
}

/**
 * A message without the empty line has an empty body (RFC 5322 3.5); the
 * signer only finishes the header section when it sees that line, so add it
 * for signing (the stored message is left as it is).
 */
function withHeaderEnd(message: Uint8Array): Uint8Array {
  const end = headerSectionEnd(message);
  if (end < message.length || (end >= 2 && message[end - 1] === 10 && message[end - 2] === 10)) return message;
  if (end >= 4 && message[end - 4] === 13 && message[end - 3] === 10 && message[end - 2] === 13 && message[end - 1] === 10) return message;
  const endsWithCrlf = message.length >= 2 && message[message.length - 2] === 13 && message[message.length - 1] === 10;
  const tail = endsWithCrlf ? "\r\n" : "\r\n\r\n";
  return Buffer.concat([message, Buffer.from(tail)]);
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
export function existingSignatures(message: Uint8Array): Set<string> {
  const found = new Set<string>();
  for (const field of headerFields(message, "dkim-signature")) {
    const tags = parseTagList(field.value);
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
