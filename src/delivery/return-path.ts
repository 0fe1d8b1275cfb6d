/**
 * Return-path alignment. With RELAY_BOUNCE_DOMAIN set, mail whose From
 * domain shares the bounce domain's organizational domain (public suffix
 * list, as DMARC's relaxed alignment uses it: mailauth's getAlignment) is
 * delivered with a VERP envelope sender at the bounce domain,
 *
 *   b.<message id>.<recipient id, base 36>@<RELAY_BOUNCE_DOMAIN>
 *
 * so SPF is evaluated for the bounce domain (whose record lists this node)
 * and aligns with the From domain for DMARC, and a bounce names the message
 * and the recipient it is about. The submitter's envelope sender stays
 * stored: the relay's own DSNs go to it. When the organizational domains
 * differ, alignment is impossible and the envelope sender is left as it is.
 */
import { getAlignment } from "mailauth/lib/tools.js";

/** RFC 5321 4.5.3.1.1. */
export const MAX_LOCAL_PART = 64;

const VERP = /^b\.([0-9A-Za-z]{26})\.([0-9a-z]{1,11})$/i;

/**
 * The domain delivery should put the envelope sender at, or undefined to keep
 * the submitter's: only when there is a bounce domain, the message has a
 * (non-null) envelope sender, and the From domain aligns with the bounce domain.
 */
export function returnPathDomainFor(input: { fromDomain: string | undefined; mailFrom: string; bounceDomain: string | undefined }): string | undefined {
  const { fromDomain, bounceDomain } = input;
  if (bounceDomain === undefined || fromDomain === undefined || input.mailFrom === "") return undefined;
  return aligned(fromDomain, bounceDomain) ? bounceDomain : undefined;
}

/** Relaxed (organizational domain) alignment of two domains, as DMARC checks SPF. */
export function aligned(fromDomain: string, envelopeDomain: string): boolean {
  return getAlignment(fromDomain.toLowerCase(), [envelopeDomain.toLowerCase()]) !== false;
}

/** The VERP envelope sender for one recipient of one message. */
export function verpAddress(messageId: string, recipientId: number, domain: string): string {
  const local = `b.${messageId}.${recipientId.toString(36)}`;
  if (local.length > MAX_LOCAL_PART) throw new Error(`VERP local part ${local} is longer than ${MAX_LOCAL_PART} octets`);
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
