/**
 * Everything the relay takes from mailauth below its public API, in one
 * place: SPF (RFC 7208), the DMARC record and its evaluation (RFC 7489), the
 * DKIM/ARC key record lookup (RFC 6376 3.6.2) and the organizational-domain
 * alignment (public suffix list). DKIM and ARC canonicalization, signing and
 * verification are the relay's own (dkim-canon.ts).
 *
 * These are mailauth's internals (`mailauth/lib/*`, typed in
 * mailauth-internals.d.ts), so package.json pins the exact version and
 * test/unit/mailauth-adapter.test.ts fails when an upgrade changes what is
 * used here: update this module, its types and MAILAUTH_VERSION together.
 */
import { dmarc } from "mailauth/lib/dmarc/index.js";
import getDmarcRecord from "mailauth/lib/dmarc/get-dmarc-record.js";
import { spf } from "mailauth/lib/spf/index.js";
import { getAlignment, getPublicKey } from "mailauth/lib/tools.js";
import type { MailauthResolver } from "./mailauth-resolver.ts";

/** The mailauth release this module was written and tested against. */
export const MAILAUTH_VERSION = "4.13.3";

export { getDmarcRecord, getPublicKey };

/** What mailauth's SPF check answers, as far as the relay reads it. */
export interface SpfAnswer {
  readonly domain: string;
  /** The SPF record evaluated. */
  readonly rr?: string;
  readonly status: { readonly result: string; readonly comment?: string };
}

/** SPF (RFC 7208) of `sender`'s domain (or `helo`'s, for a null sender) for `ip`. */
export async function checkSpf(input: {
  sender: string;
  ip: string;
  helo?: string;
  mta: string;
  resolver: MailauthResolver;
}): Promise<SpfAnswer> {
  return (await spf(input)) as unknown as SpfAnswer;
}

/** What mailauth's DMARC evaluation answers, as far as the relay reads it. */
export interface DmarcAnswer {
  readonly domain: string;
  readonly policy?: string;
  readonly p?: string;
  readonly sp?: string;
  readonly pct?: number;
  readonly rr?: string;
  readonly error?: string;
  readonly status: { readonly result: string; readonly comment?: string };
  readonly alignment?: {
    readonly spf: { readonly strict: boolean; readonly result?: string | false };
    readonly dkim: { readonly strict: boolean; readonly result?: string | false };
  };
}

/** The DMARC record of `headerFrom`'s domain (or its organizational domain) applied to the passing identities; false for an unusable From. */
export async function evaluateDmarc(input: {
  headerFrom: string;
  spfDomains: string[];
  dkimDomains: { domain: string }[];
  resolver: MailauthResolver;
}): Promise<DmarcAnswer | false> {
  return (await dmarc(input)) as unknown as DmarcAnswer | false;
}

/** Relaxed alignment (RFC 7489 3.1): whether two domains share their organizational domain. */
export function sameOrganization(domain: string, other: string): boolean {
  return getAlignment(domain.toLowerCase(), [other.toLowerCase()]) !== false;
}
