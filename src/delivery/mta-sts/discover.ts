/**
 * Policy discovery (RFC 8461 3, 5.1): the TXT record says whether a domain has
 * a policy and which version; the policy itself is fetched over HTTPS when the
 * version is new to us or our copy is older than its max_age, and a cached,
 * unexpired policy keeps applying when DNS or HTTPS fail (RFC 8461 3.3).
 */
import type { Clock } from "../../core/clock.ts";
import type { Resolver } from "../../dns/resolver.ts";
import { DEFAULT_MAX_ENTRIES, PolicyCache, type CachedPolicy } from "./cache.ts";
import { fetchPolicy as fetchOverHttps, type FetchOptions, type FetchResult } from "./fetch.ts";
import { normalizeHost, type Policy } from "./policy.ts";
import { selectStsRecord } from "./record.ts";

/**
 * What applies to mail for a domain now. `problem`, when present, says why no
 * live policy could be used (DNS failure, invalid record, failed fetch): worth
 * logging and, later, TLS reporting (RFC 8460).
 */
export type StsResult =
  | { readonly mode: "none"; readonly problem?: string }
  | { readonly mode: "testing" | "enforce"; readonly policy: Policy; readonly id: string; readonly problem?: string };

export interface MtaStsOptions {
  readonly resolver: Pick<Resolver, "txt" | "a" | "aaaa">;
  readonly clock: Clock;
  /** Replaces the HTTPS fetch (tests); by default fetch.ts with the options below. */
  readonly fetchPolicy?: (domain: string) => Promise<FetchResult>;
  /** Port of the policy host; default 443. */
  readonly port?: number;
  readonly ca?: FetchOptions["ca"];
  /** Deadline of one policy fetch; default 60 s. */
  readonly timeoutMs?: number;
  /** RELAY_SOURCE_IP. */
  readonly localAddress?: string;
  /** Domains kept in the policy cache; default 10,000. */
  readonly maxEntries?: number;
  /**
   * After a failed fetch, the same domain and id are not fetched again for
   * this long, so every message to a broken domain does not wait for a fetch
   * (RFC 8461 3.3: senders may rate-limit fetch attempts). Default 5 minutes.
   */
  readonly fetchRetryMs?: number;
}

export interface MtaSts {
  policyFor(domain: string): Promise<StsResult>;
}

interface FetchFailure {
  readonly id: string;
  readonly until: number;
  readonly reason: string;
}

export function createMtaSts(options: MtaStsOptions): MtaSts {
  const { resolver, clock } = options;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const fetchRetryMs = options.fetchRetryMs ?? 5 * 60_000;
  const cache = new PolicyCache(clock, maxEntries);
  const failures = new Map<string, FetchFailure>();
  const inflight = new Map<string, Promise<FetchResult>>();
  const fetchPolicy =
    options.fetchPolicy ??
    ((domain: string) =>
      fetchOverHttps(domain, { resolver, port: options.port, ca: options.ca, timeoutMs: options.timeoutMs, localAddress: options.localAddress }));

  /** Concurrent deliveries to one domain share one fetch. */
  function fetchOnce(domain: string, id: string): Promise<FetchResult> {
    const key = `${domain} ${id}`;
    let pending = inflight.get(key);
    if (!pending) {
      pending = fetchPolicy(domain)
        .catch((error: unknown): FetchResult => ({ ok: false, reason: `policy fetch threw: ${String(error)}` }))
        .finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    return pending;
  }

  function rememberFailure(domain: string, failure: FetchFailure): void {
    failures.delete(domain);
    failures.set(domain, failure);
    if (failures.size > maxEntries) {
      const oldest = failures.keys().next();
      if (!oldest.done) failures.delete(oldest.value);
    }
  }

  async function policyFor(rawDomain: string): Promise<StsResult> {
    const domain = normalizeHost(rawDomain);
    const cached = cache.get(domain); // only an unexpired policy (RFC 8461 3.2 max_age)
    const txt = await resolver.txt(`_mta-sts.${domain}`);
    if (!txt.ok) {
      // No record: the domain has no policy now, but a cached one applies until it expires
      // (RFC 8461 3.3). A temporary DNS failure says nothing either way: the same.
      const gone = txt.error === "NXDOMAIN" || txt.error === "NODATA";
      return fromCache(cached, gone ? undefined : `_mta-sts.${domain} TXT lookup failed: ${txt.error}${txt.detail ? ` (${txt.detail})` : ""}`);
    }
    const record = selectStsRecord(txt.answers);
    if (!record.ok) return fromCache(cached, `_mta-sts.${domain}: ${record.reason}`); // RFC 8461 3.1
    const { id } = record.record;
    if (cached && cached.id === id) return resultOf(cached); // RFC 8461 5.1 step 1: fresh and current
    const failed = failures.get(domain);
    if (failed && failed.id === id && clock.now() < failed.until) return fromCache(cached, failed.reason);
    const fetched = await fetchOnce(domain, id);
    if (fetched.ok) {
      failures.delete(domain);
      return resultOf(cache.set(domain, id, fetched.policy));
    }
    const reason = `policy fetch for ${domain} (id ${id}) failed: ${fetched.reason}`;
    rememberFailure(domain, { id, until: clock.now() + fetchRetryMs, reason });
    // RFC 8461 3.3: no policy fetched and none cached: deliver as if the domain had no MTA-STS;
    // a valid cached policy MUST still be applied.
    return fromCache(cached, reason);
  }

  return { policyFor };
}

function fromCache(cached: CachedPolicy | undefined, problem: string | undefined): StsResult {
  if (cached) return resultOf(cached, problem);
  return problem === undefined ? { mode: "none" } : { mode: "none", problem };
}

/** A policy in mode "none" means no active policy (RFC 8461 5, 8.3), but is cached like any other. */
function resultOf(entry: CachedPolicy, problem?: string): StsResult {
  const extra = problem === undefined ? {} : { problem };
  if (entry.policy.mode === "none") return { mode: "none", ...extra };
  return { mode: entry.policy.mode, policy: entry.policy, id: entry.id, ...extra };
}
