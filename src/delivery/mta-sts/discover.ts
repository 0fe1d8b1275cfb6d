/**
 * Policy discovery (RFC 8461 3, 5.1): the TXT record says whether a domain has
 * a policy and which version; the policy itself is fetched over HTTPS when the
 * version is new to us or our copy is older than its max_age, and a cached,
 * unexpired policy keeps applying when DNS or HTTPS fail (RFC 8461 3.3).
 */
import type { Clock } from "../../core/clock.ts";
import type { Resolver } from "../../dns/resolver.ts";
import { type CachedPolicy, DEFAULT_MAX_ENTRIES, PolicyCache } from "./cache.ts";
import { type FetchFailureKind, type FetchOptions, fetchPolicy as fetchOverHttps, type FetchResult } from "./fetch.ts";
import { normalizeHost, type Policy } from "./policy.ts";
import { selectStsRecord } from "./record.ts";

/**
 * What applies to mail for a domain now. `problem`, when present, says why no
 * live policy could be used (DNS failure, invalid record, failed fetch): worth
 * logging. `problemKind` says, for TLS reporting (RFC 8460 4.3.2.2), that the
 * domain announces a policy that could not be had and why; it is absent when
 * the domain simply publishes no policy record.
 */
export type StsResult =
  | { readonly mode: "none"; readonly problem?: string; readonly problemKind?: FetchFailureKind }
  | {
    readonly mode: "testing" | "enforce";
    readonly policy: Policy;
    readonly id: string;
    readonly problem?: string;
    readonly problemKind?: FetchFailureKind;
  };

interface Problem {
  readonly text: string;
  readonly kind?: FetchFailureKind;
}

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
  readonly kind: FetchFailureKind;
}

export function createMtaSts(options: MtaStsOptions): MtaSts {
  const { resolver, clock } = options;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const fetchRetryMs = options.fetchRetryMs ?? 5 * 60_000;
  const cache = new PolicyCache(clock, maxEntries);
  const failures = new Map<string, FetchFailure>();
  const inflight = new Map<string, Promise<FetchResult>>();
  const fetchPolicy = options.fetchPolicy ??
    ((domain: string) =>
      fetchOverHttps(domain, {
        resolver,
        port: options.port,
        ca: options.ca,
        timeoutMs: options.timeoutMs,
        localAddress: options.localAddress,
      }));

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
      if (gone) return fromCache(cached, undefined);
      const text = `_mta-sts.${domain} TXT lookup failed: ${txt.error}${txt.detail ? ` (${txt.detail})` : ""}`;
      return fromCache(cached, { text, kind: "fetch-error" });
    }
    const record = selectStsRecord(txt.answers);
    if (!record.ok) {
      // RFC 8461 3.1. Only a record that claims to be STSv1 announces a policy (RFC 8460 4.3.2.2 "sts-policy-invalid").
      const announced = txt.answers.some((t) => t.startsWith("v=STSv1"));
      return fromCache(cached, {
        text: `_mta-sts.${domain}: ${record.reason}`,
        ...(announced ? { kind: "invalid" as const } : {}),
      });
    }
    const { id } = record.record;
    if (cached && cached.id === id) return resultOf(cached); // RFC 8461 5.1 step 1: fresh and current
    const failed = failures.get(domain);
    if (failed && failed.id === id && clock.now() < failed.until) {
      return fromCache(cached, { text: failed.reason, kind: failed.kind });
    }
    const fetched = await fetchOnce(domain, id);
    if (fetched.ok) {
      failures.delete(domain);
      return resultOf(cache.set(domain, id, fetched.policy));
    }
    const reason = `policy fetch for ${domain} (id ${id}) failed: ${fetched.reason}`;
    const kind = fetched.kind ?? "fetch-error";
    rememberFailure(domain, { id, until: clock.now() + fetchRetryMs, reason, kind });
    // RFC 8461 3.3: no policy fetched and none cached: deliver as if the domain had no MTA-STS;
    // a valid cached policy MUST still be applied.
    return fromCache(cached, { text: reason, kind });
  }

  return { policyFor };
}

function fromCache(cached: CachedPolicy | undefined, problem: Problem | undefined): StsResult {
  if (cached) return resultOf(cached, problem);
  return { mode: "none", ...problemFields(problem) };
}

function problemFields(problem: Problem | undefined): { problem?: string; problemKind?: FetchFailureKind } {
  if (problem === undefined) return {};
  return problem.kind === undefined ? { problem: problem.text } : { problem: problem.text, problemKind: problem.kind };
}

/** A policy in mode "none" means no active policy (RFC 8461 5, 8.3), but is cached like any other. */
function resultOf(entry: CachedPolicy, problem?: Problem): StsResult {
  const extra = problemFields(problem);
  if (entry.policy.mode === "none") return { mode: "none", ...extra };
  return { mode: entry.policy.mode, policy: entry.policy, id: entry.id, ...extra };
}
