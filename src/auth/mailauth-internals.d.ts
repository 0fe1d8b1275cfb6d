/**
 * Types for the parts of mailauth (4.x, CommonJS) used below its public API:
 * a few tools and the DMARC record lookup. Kept to what this project calls;
 * package.json pins mailauth's exact version for them.
 */
declare module "mailauth/lib/tools.js" {
  /**
   * The key published at `name` (TXT), as PEM; throws with `code` ENOTFOUND / ENODATA (no record),
   * EINVALIDVER (v= not DKIM1, type "DKIM" only), EINVALIDTYPE, EINVALIDVAL (unusable key), ESHORTKEY
   * (RSA shorter than minBitLength), or the resolver's error.
   */
  export function getPublicKey(
    type: "DKIM" | "AS",
    name: string,
    minBitLength: number,
    resolver: (name: string, rrtype: string) => Promise<unknown>,
  ): Promise<{ publicKey: string | Buffer; rr: string; modulusLength?: number }>;
  /** The entry of `domainList` aligned with `fromDomain` (organizational domain unless `strict`), or false. */
  export function getAlignment(fromDomain: string, domainList: string[], strict?: boolean): { domain: string } | false;
}

declare module "mailauth/lib/dmarc/get-dmarc-record.js" {
  /** The DMARC record of `domain`, or of its organizational domain when it has none (isOrgRecord); false when neither has one. */
  export default function getDmarcRecord(
    domain: string,
    resolver: (name: string, type: string) => Promise<unknown>,
  ): Promise<
    false | { rr: string; isOrgRecord: boolean; p?: string; sp?: string; rua?: string; [tag: string]: unknown }
  >;
}
