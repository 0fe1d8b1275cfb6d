/** Typed lookups with a TTL cache (RFC 1035 7.4, negative caching RFC 2308) that follow CNAMEs (RFC 1034 3.6.2). */
import { type Clock, systemClock } from "../core/clock.ts";
import { TtlCache } from "./cache.ts";
import type { DnsClient } from "./client.ts";
import { type DnsResult, normalizeName, type RecordType, type ResourceRecord } from "./types.ts";

export interface MxRecord {
  readonly preference: number;
  /** Lower-case, no trailing dot; "." for a null MX (RFC 7505). */
  readonly exchange: string;
}

export interface Resolver {
  mx(domain: string): Promise<DnsResult<MxRecord[]>>;
  a(name: string): Promise<DnsResult<string[]>>;
  aaaa(name: string): Promise<DnsResult<string[]>>;
  /** One string per TXT record: its character-strings joined (RFC 7208 3.3, RFC 6376 3.6.2.2). */
  txt(name: string): Promise<DnsResult<string[]>>;
  /** Host names a reverse name ("4.3.2.1.in-addr.arpa") points to, lower-case, no trailing dot. */
  ptr(name: string): Promise<DnsResult<string[]>>;
}

export interface ResolverOptions {
  readonly clock?: Clock;
  /** Cap on positive TTLs, seconds; default 3600. */
  readonly maxTtl?: number;
  /** Cap on negative TTLs, seconds; default 900. */
  readonly maxNegativeTtl?: number;
  /** Negative TTL when the reply carries no SOA, seconds; default 60. */
  readonly defaultNegativeTtl?: number;
  readonly maxEntries?: number;
}

type Records = DnsResult<readonly ResourceRecord[]>;
const MAX_CNAME_HOPS = 8;

export function createResolver(client: DnsClient, options: ResolverOptions = {}): Resolver {
  const cache = new TtlCache<Records>(options.clock ?? systemClock, options.maxEntries);
  const maxTtl = options.maxTtl ?? 3600;
  const maxNegativeTtl = options.maxNegativeTtl ?? 900;
  const defaultNegativeTtl = options.defaultNegativeTtl ?? 60;
  const inflight = new Map<string, Promise<Records>>();

  async function lookup(name: string, type: RecordType): Promise<Records> {
    const key = `${type} ${normalizeName(name)}`;
    const hit = cache.get(key);
    if (hit) return { ...hit.value, ttl: hit.ttl };
    let pending = inflight.get(key);
    if (!pending) {
      pending = follow(normalizeName(name), type, 0).then((r) => remember(key, r)).finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    return pending;
  }

  /** Answers and NXDOMAIN/NODATA are cached with capped TTLs; failures to get an answer are not. */
  function remember(key: string, result: Records): Records {
    if (result.ok) {
      const capped = { ...result, ttl: Math.min(result.ttl, maxTtl) };
      cache.set(key, capped, capped.ttl);
      return capped;
    }
    if (result.error !== "NXDOMAIN" && result.error !== "NODATA") return result;
    const negative = { ...result, ttl: Math.min(result.ttl ?? defaultNegativeTtl, maxNegativeTtl) };
    cache.set(key, negative, negative.ttl);
    return negative;
  }

  /** Walks the CNAME chain inside the answer; asks again for a target the answer leaves out. */
  async function follow(name: string, type: RecordType, hops: number): Promise<Records> {
    const reply = await client.query(name, type);
    if (!reply.ok) return reply;
    let current = name;
    let ttl = Infinity;
    for (let i = 0; i <= MAX_CNAME_HOPS; i++) {
      const here = reply.answers.filter((r) => normalizeName(r.name) === current);
      const wanted = here.filter((r) => r.type === type);
      if (wanted.length > 0) return { ok: true, answers: wanted, ttl: Math.min(ttl, ...wanted.map((r) => r.ttl)) };
      const cname = here.find((r) => r.type === "CNAME");
      if (cname?.type !== "CNAME") break;
      ttl = Math.min(ttl, cname.ttl);
      current = normalizeName(cname.target);
    }
    if (current === name || hops >= MAX_CNAME_HOPS) return { ok: false, error: "NODATA", ttl: reply.negativeTtl };
    const rest = await follow(current, type, hops + 1);
    if (rest.ok) return { ...rest, ttl: Math.min(ttl, rest.ttl) };
    return rest.ttl === undefined ? rest : { ...rest, ttl: Math.min(ttl, rest.ttl) };
  }

  function typed<T>(type: RecordType, map: (r: ResourceRecord) => T | undefined) {
    return async (name: string): Promise<DnsResult<T[]>> => {
      const result = await lookup(name, type);
      if (!result.ok) return result;
      return {
        ok: true,
        ttl: result.ttl,
        answers: result.answers.flatMap((r) => {
          const v = map(r);
          return v === undefined ? [] : [v];
        }),
      };
    };
  }

  return {
    mx: typed(
      "MX",
      (r) => (r.type === "MX" ? { preference: r.preference, exchange: normalizeName(r.exchange) } : undefined),
    ),
    a: typed("A", (r) => (r.type === "A" ? r.address : undefined)),
    aaaa: typed("AAAA", (r) => (r.type === "AAAA" ? r.address : undefined)),
    txt: typed("TXT", (r) => (r.type === "TXT" ? r.strings.join("") : undefined)),
    ptr: typed("PTR", (r) => (r.type === "PTR" ? normalizeName(r.target) : undefined)),
  };
}
