/**
 * Policies by domain, as fetched, with the time they were fetched (RFC 8461
 * 3.2: a policy may be cached for max_age seconds "from the last policy fetch
 * time"; RFC 8461 5.1 step 1). Bounded: past `maxEntries` the least recently
 * stored domain is dropped.
 *
 * In memory only. Persisting it, so that a restart does not reopen the window
 * for attacks that block policy discovery (RFC 8461 10.2), is future work.
 */
import type { Clock } from "../../core/clock.ts";
import type { Policy } from "./policy.ts";

export interface CachedPolicy {
  readonly domain: string;
  /** The TXT record id the policy was fetched under (RFC 8461 3.1). */
  readonly id: string;
  readonly policy: Policy;
  /** Clock milliseconds. */
  readonly fetchedAt: number;
  readonly expiresAt: number;
}

export const DEFAULT_MAX_ENTRIES = 10_000;

export class PolicyCache {
  readonly #entries = new Map<string, CachedPolicy>();
  readonly #clock: Clock;
  readonly #maxEntries: number;

  constructor(clock: Clock, maxEntries = DEFAULT_MAX_ENTRIES) {
    this.#clock = clock;
    this.#maxEntries = Math.max(1, maxEntries);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The domain's policy while its max_age has not run out; an expired one is forgotten. */
  get(domain: string): CachedPolicy | undefined {
    const entry = this.#entries.get(domain);
    if (!entry) return undefined;
    if (this.#clock.now() < entry.expiresAt) return entry;
    this.#entries.delete(domain);
    return undefined;
  }

  set(domain: string, id: string, policy: Policy): CachedPolicy {
    const fetchedAt = this.#clock.now();
    const entry: CachedPolicy = { domain, id, policy, fetchedAt, expiresAt: fetchedAt + policy.maxAge * 1000 };
    this.#entries.delete(domain); // re-inserted last: the Map's order is the eviction order
    this.#entries.set(domain, entry);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    return entry;
  }

  delete(domain: string): void {
    this.#entries.delete(domain);
  }
}
