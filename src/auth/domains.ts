/**
 * Sending domains: their DKIM keys, the records to publish, DNS checks,
 * key rotation, and the signer used at ingress.
 *
 * Rotation: a new key starts "pending" and the signer keeps the current one
 * until the new record is visible in DNS (checked on rotate, by `domains
 * check`, and periodically); then the new key signs and the old one is
 * "retiring": not used, its record still listed as needed until the grace
 * period ends.
 *
 * Every check is compared with the last one: a record that passed and now
 * fails or is gone, or failed and now passes, is a `domain_changed` event.
 */
import { createPrivateKey } from "node:crypto";
import type { Clock } from "../core/clock.ts";
import { formatDuration } from "../core/duration.ts";
import { UsageError } from "../core/errors.ts";
import type { Resolver } from "../dns/resolver.ts";
import type { Logger } from "../core/log.ts";
import type { DkimKeyInfo, DomainStore, SendingDomainRecord } from "../queue/domains.ts";
import { defaultSelector, DKIM_ALGORITHMS, type DkimAlgorithm, generateDkimKey, selectorProblem } from "./dkim-keys.ts";
import { type SigningKey, signMessage } from "./dkim-sign.ts";
import { domainChanges } from "./domain-changes.ts";
import { checkDomain, type DomainCheckReport } from "./domain-check.ts";
import { dkimRecordToPublish, type RecordContext, recordsToPublish, type RecordToPublish } from "./domain-records.ts";
import { fromDomain } from "./from-domain.ts";
import { domainAllowed, normalizeDomains } from "./users.ts";
import { newId } from "../core/id.ts";

export type AlgorithmChoice = DkimAlgorithm | "both";
export const ALGORITHM_CHOICES: readonly AlgorithmChoice[] = ["rsa", "ed25519", "both"];

/** 404 (no such domain) or 409 (already there); bad input is a UsageError. */
export class DomainError extends Error {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
    this.name = "DomainError";
  }
}

export interface DomainView {
  readonly domain: string;
  readonly createdAt: number;
  readonly keys: readonly DkimKeyInfo[];
  readonly records: readonly RecordToPublish[];
  readonly lastCheck: DomainCheckReport | null;
  /** When a check first saw an active key's DKIM record published (RELAY_SENDER_POLICY=verified); null: not yet. */
  readonly verifiedAt: number | null;
}

export interface DomainServiceOptions {
  readonly store: DomainStore;
  readonly clock: Clock;
  /**
   * A resolver for one check: give a fresh one each time (no cache across
   * checks), so a record the operator just published is seen at once.
   */
  readonly resolver: () => Resolver;
  readonly hostname: string;
  readonly sourceIp?: string;
  /** In a fleet: every node's sending IP from the node registry, for the SPF record. */
  readonly fleetIps?: () => Promise<readonly string[]>;
  readonly bounceDomain?: string;
  /** How long a replaced key's record stays listed as needed. */
  readonly rotationGraceMs: number;
  /** How often the relay checks pending keys (for the notes). */
  readonly checkIntervalMs: number;
  readonly log?: Logger;
  /** How long the signer trusts what it read about a domain's keys; default 5 s. */
  readonly keyCacheMs?: number;
  /** Where signing happens; default in this thread (the relay passes a worker). */
  readonly signWith?: (message: Uint8Array, keys: readonly SigningKey[], now: number) => Promise<Uint8Array>;
}

export function parseAlgorithm(text: unknown, allowBoth: boolean): AlgorithmChoice {
  const choices = allowBoth ? ALGORITHM_CHOICES : DKIM_ALGORITHMS;
  if (text === undefined) return "rsa";
  if (typeof text === "string" && (choices as readonly string[]).includes(text.toLowerCase())) {
    return text.toLowerCase() as AlgorithmChoice;
  }
  throw new UsageError([`algorithm ${JSON.stringify(text)} is not valid: expected ${choices.join(", ")}`]);
}

export function parseDomain(text: string): string {
  const [domain] = normalizeDomains([text]);
  return domain!;
}

function parseSelector(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const problem = selectorProblem(text);
  if (problem) throw new UsageError([problem]);
  return text.toLowerCase();
}

export class DomainService {
  private readonly cache = new Map<string, { keys: SigningKey[]; until: number }>();
  /** Domains known to be verified: verification is never undone, so a hit needs no expiry. */
  private readonly verified = new Set<string>();
  private readonly keyCacheMs: number;

  constructor(private readonly options: DomainServiceOptions) {
    this.keyCacheMs = options.keyCacheMs ?? 5_000;
  }

  /** Add a sending domain with its first key(s), active at once (nothing signs for it yet). */
  async add(rawDomain: string, input: { selector?: string; algorithm?: unknown } = {}): Promise<DomainView> {
    const domain = parseDomain(rawDomain);
    const choice = parseAlgorithm(input.algorithm, true);
    const selector = parseSelector(input.selector);
    const now = this.options.clock.now();
    if (!(await this.options.store.addDomain(domain, now))) {
      throw new DomainError(409, `domain ${domain} is already added`);
    }
    const algorithms: DkimAlgorithm[] = choice === "both" ? ["rsa", "ed25519"] : [choice];
    for (const algorithm of algorithms) {
      const named = selector === undefined
        ? undefined
        : algorithm === "ed25519" && choice === "both"
        ? `${selector}-ed25519`
        : selector;
      await this.createKey(domain, algorithm, named, "active");
    }
    return (await this.get(domain))!;
  }

  /**
   * `dkim keygen`: a new key for a domain (added if new). It signs at once
   * when the domain has no active key of its algorithm; otherwise it waits,
   * like a rotation, until its record is visible in DNS.
   */
  async keygen(
    rawDomain: string,
    input: { selector?: string; algorithm?: unknown } = {},
  ): Promise<{ key: DkimKeyInfo; record: RecordToPublish }> {
    const domain = parseDomain(rawDomain);
    const algorithm = parseAlgorithm(input.algorithm, false) as DkimAlgorithm;
    const selector = parseSelector(input.selector);
    await this.options.store.addDomain(domain, this.options.clock.now());
    const current = await this.options.store.getDomain(domain);
    const hasActive = current?.keys.some((k) => k.algorithm === algorithm && k.state === "active") ?? false;
    const key = await this.createKey(domain, algorithm, selector, hasActive ? "pending" : "active");
    return { key, record: dkimRecordToPublish(key, await this.recordContext()) };
  }

  /**
   * A new pending key for each algorithm the domain signs with (one already
   * pending is kept, not doubled), then a DNS check, which switches to it
   * when its record is already visible.
   */
  async rotate(rawDomain: string): Promise<{ keys: DkimKeyInfo[]; check: DomainCheckReport }> {
    const domain = parseDomain(rawDomain);
    const current = await this.options.store.getDomain(domain);
    if (!current) throw new DomainError(404, `no sending domain ${domain}`);
    const algorithms = [...new Set(current.keys.filter((k) => k.state === "active").map((k) => k.algorithm))];
    if (algorithms.length === 0) algorithms.push("rsa");
    const keys: DkimKeyInfo[] = [];
    for (const algorithm of algorithms) {
      const waiting = current.keys.find((k) => k.algorithm === algorithm && k.state === "pending");
      keys.push(waiting ?? (await this.createKey(domain, algorithm, undefined, "pending")));
    }
    const check = await this.check(domain);
    const after = await this.options.store.getDomain(domain);
    return { keys: keys.map((k) => after?.keys.find((a) => a.id === k.id) ?? k), check };
  }

  async list(): Promise<DomainView[]> {
    return await Promise.all((await this.options.store.listDomains()).map((d) => this.view(d)));
  }

  async get(rawDomain: string): Promise<DomainView | undefined> {
    const record = await this.options.store.getDomain(parseDomain(rawDomain));
    return record ? await this.view(record) : undefined;
  }

  /** Check DNS, switch to pending keys that are now visible, retire expired ones, remember the result. */
  async check(rawDomain: string): Promise<DomainCheckReport> {
    const domain = parseDomain(rawDomain);
    const { store, clock } = this.options;
    await store.retireExpired(clock.now());
    const current = await store.getDomain(domain);
    if (!current) throw new DomainError(404, `no sending domain ${domain}`);
    const resolver = this.options.resolver();
    let report = await checkDomain({ ...(await this.recordContext()), domain, keys: current.keys, resolver });
    const promote = current.keys.filter((k) => k.state === "pending" && report.visibleKeyIds.includes(k.id));
    for (const key of promote) {
      const now = clock.now();
      if (await store.promote(key.id, now, now + this.options.rotationGraceMs)) {
        this.options.log?.("info", "DKIM key now signs", { domain, selector: key.selector, algorithm: key.algorithm });
      }
    }
    if (promote.length > 0) {
      this.cache.delete(domain);
      const updated = await store.getDomain(domain);
      report = await checkDomain({ ...(await this.recordContext()), domain, keys: updated?.keys ?? [], resolver });
    }
    // A record that passed and now fails or is gone (or the other way round): a `domain_changed` event, saved with the check.
    const changes = domainChanges(current.lastCheck, report);
    for (const c of changes) {
      this.options.log?.(c.after === "pass" ? "info" : "warn", "a sending domain's DNS record changed", {
        domain,
        record: c.record,
        name: c.name,
        before: c.before,
        after: c.after,
      });
    }
    await store.saveCheckWithEvents(
      domain,
      report as unknown as Record<string, unknown>,
      clock.now(),
      current.lastCheckedAt,
      changes as unknown as Record<string, unknown>[],
    );
    // Verified (RELAY_SENDER_POLICY): an active key's record was seen published and matching, once is enough.
    if (report.records.some((r) => r.purpose === "dkim" && r.keyState === "active" && r.status === "pass")) {
      await store.markVerified(domain, clock.now());
    }
    return report;
  }

  /**
   * The periodic job: retire keys past their grace period, then check every
   * domain (keys waiting for DNS first): a pending key that is now visible
   * signs, and a record that changed raises a `domain_changed` event.
   */
  async maintain(): Promise<void> {
    await this.options.store.retireExpired(this.options.clock.now());
    const pending = await this.options.store.domainsWithPendingKeys();
    const all = (await this.options.store.listDomains()).map((d) => d.domain);
    for (const domain of new Set([...pending, ...all])) {
      try {
        await this.check(domain);
      } catch (error) {
        this.options.log?.("warn", "DNS check of a sending domain failed", { domain, error: String(error) });
      }
    }
  }

  /**
   * DKIM-sign `message` with the active keys of its From domain (exact
   * domain: a key for example.com does not sign mail from
   * news.example.com), when `allowedDomains` (the submitter's grant, empty =
   * any) covers that domain. Unsigned when there is no key; a signing failure
   * is logged (never the key) and the message goes unsigned.
   */
  async sign(message: Uint8Array, allowedDomains: readonly string[] = []): Promise<Uint8Array> {
    const domain = fromDomain(message);
    if (domain === undefined || !domainAllowed(allowedDomains, domain)) return message;
    const keys = await this.signingKeys(domain);
    if (keys.length === 0) return message;
    try {
      return await (this.options.signWith ?? signMessage)(message, keys, this.options.clock.now());
    } catch (error) {
      this.options.log?.("warn", "DKIM signing failed; the message goes unsigned", {
        domain,
        error: error instanceof Error ? error.message : String(error),
      });
      return message;
    }
  }

  /**
   * RELAY_SENDER_POLICY=verified: is `domain` (exactly) a sending domain whose
   * active DKIM key's record a check has seen in DNS at least once? Only
   * positive answers are cached, so a domain verified by "relay domains
   * check" (another process) counts at once.
   */
  async isVerified(domain: string): Promise<boolean> {
    if (this.verified.has(domain)) return true;
    if ((await this.options.store.verifiedAt(domain)) === undefined) return false;
    if (this.verified.size > 10_000) this.verified.clear();
    this.verified.add(domain);
    return true;
  }

  /** Active keys, re-read from the database at most every keyCacheMs, so keys added by `relay domains add` are picked up. */
  async signingKeys(domain: string): Promise<SigningKey[]> {
    const now = this.options.clock.now();
    const hit = this.cache.get(domain);
    if (hit && hit.until > now) return hit.keys;
    const rows = await this.options.store.signingKeys(domain);
    const keys = rows.map((r) => ({
      domain,
      selector: r.selector,
      algorithm: r.algorithm,
      privateKey: createPrivateKey(r.privateKey),
    }));
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(domain, { keys, until: now + this.keyCacheMs });
    return keys;
  }

  private async createKey(
    domain: string,
    algorithm: DkimAlgorithm,
    selector: string | undefined,
    state: "active" | "pending",
  ): Promise<DkimKeyInfo> {
    const { store, clock } = this.options;
    const taken = new Set(await store.selectors([domain]));
    const name = selector ?? defaultSelector(algorithm, clock.now(), taken);
    if (taken.has(name)) throw new DomainError(409, `domain ${domain} already has a key with selector ${name}`);
    const generated = generateDkimKey(algorithm);
    const id = newId(clock.now());
    const added = await store.addKey(
      {
        id,
        domain,
        selector: name,
        algorithm,
        privateKey: generated.privateKeyPem,
        publicKey: generated.publicKey,
        state,
      },
      clock.now(),
    );
    if (!added) throw new DomainError(409, `domain ${domain} already has a key with selector ${name}`);
    this.cache.delete(domain);
    const stored = (await store.getDomain(domain))?.keys.find((k) => k.id === id);
    if (!stored) throw new Error(`DKIM key ${id} vanished right after it was added`);
    return stored;
  }

  private async recordContext(): Promise<RecordContext> {
    return {
      sourceIp: this.options.sourceIp,
      fleetIps: await this.options.fleetIps?.(),
      bounceDomain: this.options.bounceDomain,
      hostname: this.options.hostname,
      checkIntervalText: formatDuration(this.options.checkIntervalMs),
      now: this.options.clock.now(),
    };
  }

  private async view(record: SendingDomainRecord): Promise<DomainView> {
    return {
      domain: record.domain,
      createdAt: record.createdAt,
      keys: record.keys,
      records: recordsToPublish(record.domain, record.keys, await this.recordContext()),
      lastCheck: (record.lastCheck as DomainCheckReport | null) ?? null,
      verifiedAt: record.verifiedAt,
    };
  }
}
