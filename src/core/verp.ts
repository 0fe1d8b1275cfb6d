/**
 * VERP (variable envelope return path) addresses: the envelope sender a
 * message leaves with when its return path is at RELAY_BOUNCE_DOMAIN
 * (ingress/return-path.ts decides when), one per recipient,
 *
 *   b.<message id>.<recipient id, base 36>@<RELAY_BOUNCE_DOMAIN>
 *
 * so that a bounce names the message and the recipient it is about.
 */

/** RFC 5321 4.5.3.1.1. */
export const MAX_LOCAL_PART = 64;

const VERP = /^b\.([0-9A-Za-z]{26})\.([0-9a-z]{1,11})$/i;

/** The VERP envelope sender for one recipient of one message. */
export function verpAddress(messageId: string, recipientId: number, domain: string): string {
  const local = `b.${messageId}.${recipientId.toString(36)}`;
  if (local.length > MAX_LOCAL_PART) {
    throw new Error(`VERP local part ${local} is longer than ${MAX_LOCAL_PART} octets`);
  }
  return `${local}@${domain}`;
}

/** The message and recipient a VERP address at `domain` stands for (bounce processing); undefined for any other address. */
export function parseVerp(address: string, domain: string): { messageId: string; recipientId: number } | undefined {
  const at = address.lastIndexOf("@");
  if (at < 0 || address.slice(at + 1).toLowerCase() !== domain.toLowerCase()) return undefined;
  const match = VERP.exec(address.slice(0, at));
  if (!match) return undefined;
  const recipientId = parseInt(match[2]!.toLowerCase(), 36);
  if (!Number.isSafeInteger(recipientId)) return undefined;
  return { messageId: match[1]!.toUpperCase(), recipientId };
}
