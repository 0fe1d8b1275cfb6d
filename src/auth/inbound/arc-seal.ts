/**
 * ARC sealing (RFC 8617 5.1): the set an intermediary adds when it forwards
 * a message whose authentication it checked — ARC-Authentication-Results
 * (our results), ARC-Message-Signature (over the message as forwarded) and
 * ARC-Seal (over the chain, with cv= the chain's validation status) — signed
 * on the message's octets like our DKIM signatures (../dkim-canon.ts).
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, type KeyObject, sign } from "node:crypto";
import type { Clock } from "../../core/clock.ts";
import { bodyHash, ByteSink, relaxedHeader } from "../dkim-canon.ts";
import { type HeaderField, type MessageParts, splitMessage } from "../../core/header-section.ts";
import { signedFields } from "../dkim-sign.ts";
import { signedField, unsignedField } from "../signature-field.ts";
import { fieldTags } from "./signature-verify.ts";

/**
 * What the ARC-Message-Signature covers, every instance present (RFC 8617
 * 4.1.2: as a DKIM-Signature would, with DKIM-Signature itself, never an
 * ARC-Seal nor the Authentication-Results we add after sealing).
 */
export const ARC_SIGNED_HEADERS = [
  "DKIM-Signature",
  "From",
  "Sender",
  "Reply-To",
  "Subject",
  "Date",
  "Message-ID",
  "To",
  "Cc",
  "MIME-Version",
  "Content-Type",
  "Content-Transfer-Encoding",
  "Content-ID",
  "Content-Description",
  "Resent-Date",
  "Resent-From",
  "Resent-Sender",
  "Resent-To",
  "Resent-Cc",
  "Resent-Message-ID",
  "In-Reply-To",
  "References",
  "List-Id",
  "List-Help",
  "List-Unsubscribe",
  "List-Subscribe",
  "List-Post",
  "List-Owner",
  "List-Archive",
] as const;

/** A signing key for ARC. RFC 8617 allows rsa-sha256 only, so it must be RSA. */
export interface ArcSealKey {
  /** d= */
  readonly domain: string;
  /** s= */
  readonly selector: string;
  /** PEM (PKCS#8 or PKCS#1). */
  readonly privateKey: string | Uint8Array;
}

export interface ArcSealInput {
  /** The Authentication-Results value this set carries: "host;\r\n\tspf=pass ...". */
  readonly authResults: string;
  /** The validation status of the chain so far (RFC 8617 4.1.3): none without a chain. */
  readonly cv: "none" | "pass" | "fail";
}

/**
 * The three header fields to put on top of `message`, ARC-Seal first (each
 * folded, without its final CRLF). Throws when the key is not RSA or
 * mailauth cannot sign with it.
 */
export async function arcSeal(
  message: Uint8Array,
  input: ArcSealInput,
  key: ArcSealKey,
  deps: { readonly clock: Clock },
): Promise<string[]> {
  const privateKey = createPrivateKey(
    typeof key.privateKey === "string" ? key.privateKey : Buffer.from(key.privateKey),
  );
  const type = privateKey.asymmetricKeyType;
  if (type !== "rsa") {
    throw new Error(
      `ARC sealing needs an RSA key (RFC 8617 rsa-sha256); the key for ${key.selector}._domainkey.${key.domain} is ${type}`,
    );
  }
  const parts = splitMessage(message);
  const chain = arcSets(message, parts);
  const i = chain.length + 1;
  const t = String(Math.floor(deps.clock.now() / 1000));
  const aar = textField(`ARC-Authentication-Results: i=${i}; ${input.authResults}`);

  const signed = signedFields(parts.fields, ARC_SIGNED_HEADERS, []);
  const amsData = new ByteSink(2048);
  for (const field of signed.fields) relaxedHeader(message, field, amsData);
  const ams = unsignedField("ARC-Message-Signature", [
    ["i", String(i)],
    ["a", "rsa-sha256"],
    ["c", "relaxed/relaxed"],
    ["d", key.domain],
    ["s", key.selector],
    ["t", t],
    ["h", signed.names.join(":")],
    ["bh", bodyHash(message, parts.bodyStart, "relaxed", "sha256")],
  ]);
  amsData.append(ams.canonical);
  const amsField = textField(signedField(ams.head, rsaSign(amsData.bytes(), privateKey)));

  // The seal covers the chain before it when that chain passed, else only its own set (RFC 8617 5.1.1).
  const sealData = new ByteSink(4096);
  if (input.cv === "pass") {
    for (const set of chain) for (const field of set) relaxedHeader(message, field, sealData);
  }
  relaxedHeader(aar.bytes, aar.field, sealData);
  relaxedHeader(amsField.bytes, amsField.field, sealData);
  const seal = unsignedField("ARC-Seal", [
    ["i", String(i)],
    ["a", "rsa-sha256"],
    ["t", t],
    ["cv", input.cv],
    ["d", key.domain],
    ["s", key.selector],
  ]);
  sealData.append(seal.canonical);
  return [signedField(seal.head, rsaSign(sealData.bytes(), privateKey)), amsField.text, aar.text];
}

function rsaSign(data: Uint8Array, key: KeyObject): string {
  return sign("sha256", data, key).toString("base64");
}

/** A header field we made, as text and as octets (UTF-8: our results may name a UTF-8 address). */
function textField(text: string): { text: string; bytes: Uint8Array; field: HeaderField } {
  const bytes = Buffer.from(text, "utf8");
  const colon = bytes.indexOf(58);
  return { text, bytes, field: { name: text.slice(0, colon).toLowerCase(), start: 0, colon, end: bytes.length } };
}

/** The ARC sets already on the message, by instance from 1: each its AAR, AMS and AS, in that order. */
function arcSets(message: Uint8Array, parts: MessageParts): HeaderField[][] {
  const order = ["arc-authentication-results", "arc-message-signature", "arc-seal"];
  const sets: HeaderField[][] = [];
  for (const field of parts.fields) {
    const at = order.indexOf(field.name);
    if (at < 0) continue;
    const instance = Number(fieldTags(message, field).get("i"));
    (sets[instance - 1] ??= [])[at] = field;
  }
  // Sealing follows a check that read the chain whole (sealable); anything else is a caller's mistake.
  const whole = Array.from(sets, (set) => set !== undefined && set.length === 3 && set.every(Boolean));
  if (!whole.every(Boolean)) throw new Error("ARC sealing over an incomplete chain");
  return sets;
}
