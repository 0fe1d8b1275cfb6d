/**
 * DKIM signing (RFC 6376; Ed25519-SHA256 RFC 8463), on the message's octets
 * (./dkim-canon.ts): one pass over the header section, the body hash
 * computed once for every key, the signed header fields canonicalized once,
 * then per key only its DKIM-Signature field and the signature itself.
 *
 * Policy: relaxed/relaxed, SHA-256, no l= (a body length limit lets anyone
 * append content under our signature).
 */
import { createHash, type KeyObject, sign } from "node:crypto";
import { asciiDomain } from "../core/address.ts";
import { bodyHash, ByteSink, relaxedHeader } from "./dkim-canon.ts";
import { type HeaderField, type MessageParts, prependFields, splitMessage } from "../core/header-section.ts";
import { type DkimAlgorithm, parseTagList } from "./dkim-keys.ts";
import { signedField, unsignedField } from "./signature-field.ts";

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
  "List-Unsubscribe-Post",
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
 * The DKIM-Signature fields for `message`, one per key, to be put on top
 * of it.
 */
export function dkimSignatures(
  message: Uint8Array,
  keys: readonly SigningKey[],
  now: number,
  parts: MessageParts = splitMessage(message),
): string[] {
  if (keys.length === 0) return [];
  const signed = signedFields(parts.fields);
  const headers = new ByteSink(1024);
  for (const field of signed.fields) relaxedHeader(message, field, headers);
  const bh = bodyHash(message, parts.bodyStart, "relaxed", "sha256");
  const t = String(Math.floor(now / 1000));
  const out: string[] = [];
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
    const signature = key.algorithm === "ed25519"
      ? sign(null, createHash("sha256").update(data).digest(), key.privateKey)
      : (key.rsaSha256?.(data) ?? sign("sha256", data, key.privateKey));
    out.push(
      signedField(head, Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString("base64")),
    );
  }
  return out;
}

/** `message` with `keys` signatures on top, skipping keys whose d= and s= already signed it. */
export function signMessage(message: Uint8Array, keys: readonly SigningKey[], now: number): Uint8Array {
  const parts = splitMessage(message);
  const existing = existingSignatures(message, parts);
  const wanted = existing.size === 0
    ? keys
    : keys.filter((k) => !existing.has(`${k.domain} ${k.selector.toLowerCase()}`));
  return prependFields(message, dkimSignatures(message, wanted, now, parts));
}

const utf8 = new TextDecoder("utf-8");

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
