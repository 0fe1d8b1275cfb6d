/**
 * Unsubscribe tokens: one per recipient of a bulk message, in its
 * List-Unsubscribe link and mailto address,
 *
 *   <recipient id, base 36>.<HMAC-SHA256(key, "unsubscribe:" id), first 128 bits, hex>
 *
 * Unguessable without the node's key (a random 256-bit secret kept in the
 * database's settings), checked by recomputing, so nothing is stored per
 * token. Lower case only: a mail system may fold the case of a local part.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const MAC_BYTES = 16;
const TOKEN = /^([0-9a-z]{1,11})\.([0-9a-f]{32})$/;

export class UnsubscribeTokens {
  constructor(private readonly key: Uint8Array) {}

  /** A fresh random key, for a node that has none yet. */
  static newKey(): Uint8Array {
    return randomBytes(32);
  }

  tokenFor(recipientId: number): string {
    return `${recipientId.toString(36)}.${this.mac(recipientId).toString("hex")}`;
  }

  /** The recipient id a token stands for; undefined when it is malformed or its MAC is not ours. */
  recipientOf(token: string): number | undefined {
    const match = TOKEN.exec(token.toLowerCase());
    if (!match) return undefined;
    const recipientId = parseInt(match[1]!, 36);
    if (!Number.isSafeInteger(recipientId)) return undefined;
    const given = Buffer.from(match[2]!, "hex");
    return timingSafeEqual(given, this.mac(recipientId)) ? recipientId : undefined;
  }

  private mac(recipientId: number): Buffer {
    return createHmac("sha256", this.key).update(`unsubscribe:${recipientId}`).digest().subarray(0, MAC_BYTES);
  }
}
