/** Where mail for a domain goes: RFC 5321 5.1 (MX, implicit MX) and RFC 7505 (null MX). */
import { asciiDomain } from "../core/address.ts";
import { isValidName } from "./name.ts";
import type { MxRecord, Resolver } from "./resolver.ts";
import { type DnsError, normalizeName } from "./types.ts";

export interface MailHost {
  readonly name: string;
  readonly preference: number;
  /** IPv6 first, then IPv4. */
  readonly addresses: readonly string[];
  /** True for the domain itself used as its own MX (no MX records). */
  readonly implicit: boolean;
}

export type MailHostsResult =
  /** In delivery order: by preference, random among equals. Never empty. */
  | { readonly kind: "hosts"; readonly hosts: readonly MailHost[] }
  /** The domain accepts no mail (RFC 7505 3): bounce. */
  | { readonly kind: "null-mx" }
  /** The domain does not exist (NXDOMAIN) or is not a valid name: bounce. */
  | { readonly kind: "no-domain" }
  /** The domain exists but no host to deliver to has an address: bounce. */
  | { readonly kind: "no-hosts"; readonly detail: string }
  /** DNS could not answer now: defer, never bounce. */
  | { readonly kind: "temporary"; readonly error: DnsError; readonly detail: string };

export interface MailHostsOptions {
  /** For shuffling equal preferences; default Math.random. */
  readonly random?: () => number;
}

const PERMANENT_NO_ADDRESS = new Set<DnsError>(["NXDOMAIN", "NODATA"]);

export async function resolveMailHosts(
  resolver: Resolver,
  domain: string,
  options: MailHostsOptions = {},
): Promise<MailHostsResult> {
  // DNS holds internationalized names as A-labels (RFC 5890); "" (no A-label form) is no domain.
  const name = normalizeName(asciiDomain(domain));
  if (name === "." || !isValidName(name)) return { kind: "no-domain" };
  const mx = await resolver.mx(name);
  if (!mx.ok) {
    if (mx.error === "NXDOMAIN") return { kind: "no-domain" };
    if (mx.error !== "NODATA") return { kind: "temporary", error: mx.error, detail: `MX ${name}: ${mx.error}` };
    // RFC 5321 5.1: no MX records, so the domain is its own (implicit) MX, preference 0.
    return collect(resolver, [{ preference: 0, exchange: name }], true, name);
  }
  // RFC 7505 3: a single MX whose exchange is the root means "no mail here".
  if (mx.answers.length === 1 && mx.answers[0]!.exchange === ".") return { kind: "null-mx" };
  const ordered = order(mx.answers.filter((r) => r.exchange !== "."), options.random ?? Math.random);
  return collect(resolver, ordered, false, name);
}

/** Sorted by preference; equal preferences shuffled (RFC 5321 5.1); a host listed twice keeps its best. */
function order(records: readonly MxRecord[], random: () => number): MxRecord[] {
  const best = new Map<string, number>();
  for (const r of records) best.set(r.exchange, Math.min(r.preference, best.get(r.exchange) ?? Infinity));
  const shuffled = [...best].map(([exchange, preference]) => ({ exchange, preference }));
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  return shuffled.sort((x, y) => x.preference - y.preference); // stable: keeps the shuffle among equals
}

async function collect(
  resolver: Resolver,
  records: readonly MxRecord[],
  implicit: boolean,
  domain: string,
): Promise<MailHostsResult> {
  const looked = await Promise.all(records.map(async (r) => ({ r, found: await addressesOf(resolver, r.exchange) })));
  const hosts: MailHost[] = [];
  const temporary: { error: DnsError; text: string }[] = [];
  for (const { r, found } of looked) {
    if (found.addresses.length > 0) {
      hosts.push({ name: r.exchange, preference: r.preference, addresses: found.addresses, implicit });
    } else if (found.temporary) temporary.push({ error: found.temporary, text: `${r.exchange}: ${found.temporary}` });
  }
  if (hosts.length > 0) return { kind: "hosts", hosts };
  // No host has an address. If some lookup failed only for now, the answer may differ later: defer.
  if (temporary.length > 0) {
    const detail = `no address for the mail hosts of ${domain}: ${temporary.map((t) => t.text).join("; ")}`;
    return { kind: "temporary", error: temporary[0]!.error, detail };
  }
  return {
    kind: "no-hosts",
    detail: `no A or AAAA for ${records.map((r) => r.exchange).join(", ") || "(no MX hosts)"}`,
  };
}

/** AAAA then A; a host whose lookups failed temporarily says so when it has no address at all. */
async function addressesOf(resolver: Resolver, host: string): Promise<{ addresses: string[]; temporary?: DnsError }> {
  const [v6, v4] = await Promise.all([resolver.aaaa(host), resolver.a(host)]);
  const addresses = [...(v6.ok ? v6.answers : []), ...(v4.ok ? v4.answers : [])];
  const failed = [v6, v4].flatMap((r) => (!r.ok && !PERMANENT_NO_ADDRESS.has(r.error) ? [r.error] : []));
  return failed[0] !== undefined ? { addresses, temporary: failed[0] } : { addresses };
}
