/**
 * VERP (variable envelope return path) addresses: the envelope sender a
 * message leaves with when its return path is at RELAY_BOUNCE_DOMAIN
 * (ingress/return-path.ts decides when), one per recipient,
 *
 *   b.<message id>.<recipient id, base 36>.<tag>@<RELAY_BOUNCE_DOMAIN>
 *
 * so that a bounce names the message and the recipient it is about. The tag
 * is a keyed hash (HMAC-SHA-256, truncated) of the message and recipient ids
 * under this relay's VERP key (app/verp-key.ts), so nobody without the key can
 * make up an address that names one of our messages and have a forged bounce
 * or complaint counted against a recipient. Everything is compared without
 * regard to case: some MTAs fold the local part of a reverse-path.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** RFC 5321 4.5.3.1.1. */
export const MAX_LOCAL_PART = 64;

/**
 * Tag length in base-32 characters: 50 bits, so a forger's guess is right
 * once in 2^50 tries, each an SMTP transaction. The longest local part is
 * 2 + 26 + 1 + 11 + 1 + 10 = 51 octets.
 */
const TAG_LENGTH = 10;

const VERP = /^b\.([0-9A-Za-z]{26})\.([0-9a-z]{1,11})\.([a-z2-7]{10})$/i;

/** The secret VERP tags are made with: at least 16 random bytes. */
export type VerpKey = Uint8Array;

/** The VERP envelope sender for one recipient of one message. */
export function verpAddress(messageId: string, recipientId: number, domain: string, key: VerpKey): string {
  const local = `b.${messageId}.${recipientId.toString(36)}.${verpTag(messageId, recipientId, key)}`;
  if (local.length > MAX_LOCAL_PART) {
    throw new Error(`VERP local part ${local} is longer than ${MAX_LOCAL_PART} octets`);
  }
  return `${local}@${domain}`;
}

export type VerpParse =
  | { readonly kind: "verified"; readonly messageId: string; readonly recipientId: number }
  /** Shaped like one of ours, but its tag is not the one our key makes: made up or altered. */
  | { readonly kind: "forged"; readonly messageId: string; readonly recipientId: number }
  /** Not a VERP address at `domain`. */
  | { readonly kind: "none" };

/** The message and recipient a VERP address at `domain` stands for, verified with `key` (bounce processing). */
export function parseVerp(address: string, domain: string, key: VerpKey): VerpParse {
  const at = address.lastIndexOf("@");
  if (at < 0 || address.slice(at + 1).toLowerCase() !== domain.toLowerCase()) return { kind: "none" };
  const match = VERP.exec(address.slice(0, at));
  if (!match) return { kind: "none" };
  const recipientId = parseInt(match[2]!.toLowerCase(), 36);
  if (!Number.isSafeInteger(recipientId)) return { kind: "none" };
  const messageId = match[1]!.toUpperCase();
  const expected = Buffer.from(verpTag(messageId, recipientId, key));
  const given = Buffer.from(match[3]!.toLowerCase());
  const kind = timingSafeEqual(expected, given) ? "verified" : "forged";
  return { kind, messageId, recipientId };
}

/** RFC 4648 base 32, lower case (so a folded local part still verifies). */
const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

function verpTag(messageId: string, recipientId: number, key: VerpKey): string {
  const mac = createHmac("sha256", key).update(`${messageId.toUpperCase()}.${recipientId}`).digest();
  let bits = 0n;
  for (const byte of mac.subarray(0, 7)) bits = (bits << 8n) | BigInt(byte);
  let tag = "";
  for (let i = 0; i < TAG_LENGTH; i++) tag += BASE32[Number((bits >> BigInt(56 - 5 * (i + 1))) & 31n)];
  return tag;
}
