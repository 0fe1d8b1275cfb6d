/**
 * Return-path alignment, decided at ingress and stored with the message.
 * With RELAY_BOUNCE_DOMAIN set, mail whose From domain shares the bounce
 * domain's organizational domain (public suffix list, as DMARC's relaxed
 * alignment uses it: auth/mailauth.ts) is delivered with a VERP
 * envelope sender at the bounce domain (core/verp.ts), so SPF is evaluated
 * for the bounce domain (whose record lists this node) and aligns with the
 * From domain for DMARC. The submitter's envelope sender stays stored: the
 * relay's own DSNs go to it. When the organizational domains differ,
 * alignment is impossible and the envelope sender is left as it is.
 */
import { sameOrganization } from "../auth/mailauth.ts";

/**
 * The domain delivery should put the envelope sender at, or undefined to keep
 * the submitter's: only when there is a bounce domain, the message has a
 * (non-null) envelope sender, and the From domain aligns with the bounce domain.
 */
export function returnPathDomainFor(
  input: { fromDomain: string | undefined; mailFrom: string; bounceDomain: string | undefined },
): string | undefined {
  const { fromDomain, bounceDomain } = input;
  if (bounceDomain === undefined || fromDomain === undefined || input.mailFrom === "") return undefined;
  return aligned(fromDomain, bounceDomain) ? bounceDomain : undefined;
}

/** Relaxed (organizational domain) alignment of two domains, as DMARC checks SPF. */
export function aligned(fromDomain: string, envelopeDomain: string): boolean {
  return sameOrganization(fromDomain, envelopeDomain);
}
