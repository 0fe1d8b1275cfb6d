/**
 * Our Resolver in the shape mailauth asks for: `resolver(name, rrtype)`
 * answering like node's `dns.promises.resolve` (TXT as string[][], MX as
 * {exchange, priority}[], A/AAAA/PTR as string[]) and failing with the
 * error codes node uses, which is what mailauth's SPF, DKIM, DMARC and ARC
 * code branch on: ENOTFOUND / ENODATA are answers ("no such name", "no such
 * record": SPF void lookups, DKIM "no key", DMARC "no record"), anything else
 * a failure to get one (temperror).
 */
import type { DnsError, DnsResult } from "../dns/types.ts";
import type { Resolver } from "../dns/resolver.ts";

export type InboundResolver = Pick<Resolver, "txt" | "a" | "aaaa" | "mx" | "ptr">;

// deno-lint-ignore no-explicit-any -- mailauth's resolver contract: answers of every record type
export type MailauthResolver = (name: string, rrtype: string) => Promise<any[]>;

/** node's dns error codes (node:dns "Error codes") for our DnsError values. */
const NODE_CODES: Record<DnsError, string> = {
  NXDOMAIN: "ENOTFOUND",
  NODATA: "ENODATA",
  SERVFAIL: "ESERVFAIL",
  REFUSED: "EREFUSED",
  TIMEOUT: "ETIMEOUT",
  FORMERR: "EFORMERR",
  NETWORK: "ECONNREFUSED",
};

export interface DnsLookupError extends Error {
  code: string;
  hostname: string;
  /**
   * mailauth's SPF code reads this to pick its result. It ignores a failed
   * lookup inside `include:` unless the error carries one, while RFC 7208
   * 5.2 makes that a temperror; so every failure to get an answer says so.
   */
  spfResult?: { error: "temperror"; text: string };
}

export function dnsLookupError(error: DnsError, name: string, rrtype: string, detail?: string): DnsLookupError {
  const code = NODE_CODES[error];
  const text = `${rrtype} lookup of ${name} failed: ${error}${detail ? ` (${detail})` : ""}`;
  const err = Object.assign(new Error(text), { code, hostname: name }) as DnsLookupError;
  if (error !== "NXDOMAIN" && error !== "NODATA") err.spfResult = { error: "temperror", text };
  return err;
}

export function mailauthResolver(resolver: InboundResolver): MailauthResolver {
  const answers = <T>(name: string, rrtype: string, result: DnsResult<T[]>): T[] => {
    if (!result.ok) throw dnsLookupError(result.error, name, rrtype, result.detail);
    return result.answers;
  };
  return async (rawName, rrtype) => {
    const name = String(rawName).replace(/\.$/, "");
    switch (String(rrtype).toUpperCase()) {
      case "TXT":
        // node splits a record into its character-strings; mailauth joins them again.
        return answers(name, "TXT", await resolver.txt(name)).map((record) => [record]);
      case "A":
        return answers(name, "A", await resolver.a(name));
      case "AAAA":
        return answers(name, "AAAA", await resolver.aaaa(name));
      case "MX":
        return answers(name, "MX", await resolver.mx(name)).map((mx) => ({
          exchange: mx.exchange,
          priority: mx.preference,
        }));
      case "PTR":
        return answers(name, "PTR", await resolver.ptr(name));
      default: {
        const err = Object.assign(new Error(`${rrtype} lookups are not supported`), {
          code: "ENOTIMP",
          hostname: name,
        });
        throw err;
      }
    }
  };
}
