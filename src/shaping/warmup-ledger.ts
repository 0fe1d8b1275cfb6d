import { formatIp, ipToBigInt } from "../core/cidr.ts";
import type { Lane } from "../core/lane.ts";
import type { Logger } from "../core/log.ts";
import { OTHER_PROVIDER, type Warmup, type WarmupPlan, type WarmupRates, type WarmupStep } from "./rules.ts";
import {
  DAY_MS,
  freshRecord,
  HOUR_MS,
  judge,
  type Judgement,
  ratesOf,
  rollRecord,
  type WarmupRecord,
} from "./warmup-window.ts";

/** What became of a message sent, as warmup measures it. */
export type WarmupOutcome = "delivered" | "deferred" | "blocked" | "complained";

/**
 * The share of each cap (hourly and daily, rounded down, at least one) that
 * bulk mail may use; the rest is kept for transactional mail, which may use
 * the whole cap. So once bulk has used its share, a password reset still
 * goes out that hour.
 */
export const BULK_SHARE = 0.8;

/** The source IP of a relay that binds none (RELAY_SOURCE_IP unset): the system picks it. */
export const ANY_SOURCE_IP = "any";

/** One source IP and provider as `GET /v1/warmup` shows it. */
export interface WarmupEntry {
  readonly sourceIp: string;
  readonly provider: string;
  /** Past the last step: uncapped, and no longer judged. */
  readonly warm: boolean;
  /** 0-based index into the plan's steps; the number of steps when warm. */
  readonly step: number;
  readonly steps: number;
  readonly stepSince: number;
  /** The current step's caps, and bulk mail's share of them; absent when warm. */
  readonly caps?: WarmupStep;
  readonly bulkCaps?: WarmupStep;
  readonly hour: { readonly start: number; readonly sent: number };
  readonly day: { readonly start: number; readonly sent: number };
  readonly window: {
    readonly start: number;
    readonly end: number;
    readonly sent: number;
    readonly delivered: number;
    readonly deferred: number;
    readonly blocked: number;
    readonly complained: number;
  };
  readonly rates: WarmupRates;
  /** What the window's counts so far would do at its end; absent when warm. */
  readonly next?: Judgement & { readonly at: number };
}

interface Pair {
  readonly record: WarmupRecord;
  /** The earliest time the next message may go, and the next bulk one: spacing is not stored (a restart may send one early). */
  paceAt: number;
  bulkPaceAt: number;
}

const keyOf = (sourceIp: string, provider: string) => `${sourceIp} ${provider}`;

/** The share of `cap` that `lane` may use. */
const laneCap = (cap: number, lane: Lane) => (lane === "bulk" ? Math.max(1, Math.floor(cap * BULK_SHARE)) : cap);

/**
 * Closed-loop IP warmup (docs/shaping.md): per source IP and receiving
 * provider, how many messages may go, when, and how the step grows with the
 * replies. No I/O and no clock of its own: delivery asks `nextSendAt`, then
 * reports `sent` and each `outcome`, each with the time. The state lives here; `flush` hands
 * what changed to storage, and a ledger made from the stored rows goes on
 * where they left off.
 *
 * Caps: at most the step's hourly cap in an hour and its daily cap in a day,
 * and the hourly cap spaced evenly over the hour (one message every
 * hour/hourly), so that a backlog goes out across the hour rather than at
 * its start. A message over a cap is never refused: `nextSendAt` says when
 * it may go.
 */
export class WarmupLedger {
  readonly #pairs = new Map<string, Pair>();
  readonly #changed = new Set<string>();
  /** Each source IP as delivery writes it, in canonical form: worked out once, not per message. */
  readonly #canonicalIps = new Map<string | undefined, string>();

  constructor(
    private readonly plans: Warmup,
    stored: readonly WarmupRecord[] = [],
    private readonly log?: Logger,
  ) {
    for (const record of stored) {
      this.#pairs.set(keyOf(record.sourceIp, record.provider), { record: { ...record }, paceAt: 0, bulkPaceAt: 0 });
    }
  }

  /**
   * When the next message of `lane` from `sourceIp` to `provider` may be
   * sent: `now` when the caps allow it, else the earliest time they do (ask
   * again then: a window that ends may change the step). `sourceIp`
   * undefined: the relay binds none; `provider` undefined: the MX hosts are
   * no known provider's (each counted under a name of its own).
   */
  nextSendAt(sourceIp: string | undefined, provider: string | undefined, lane: Lane, now: number): number {
    const pair = this.#pair(sourceIp, provider, now);
    const step = this.#stepOf(pair.record);
    if (step === undefined) return now;
    const { record } = pair;
    let at = Math.max(now, pair.paceAt, lane === "bulk" ? pair.bulkPaceAt : now);
    const hourEnd = record.hourStart + HOUR_MS;
    if (at < hourEnd && record.hourSent >= laneCap(step.hourly, lane)) at = hourEnd;
    const dayEnd = record.dayStart + DAY_MS;
    if (at < dayEnd && record.daySent >= laneCap(step.daily, lane)) at = dayEnd;
    // Whole milliseconds, never earlier than the spacing allows.
    return Math.ceil(at);
  }

  /**
   * How far apart messages of `lane` go under the current step's hourly cap
   * (0: warm, uncapped), for delivery to foresee when queued mail will go.
   */
  spacing(sourceIp: string | undefined, provider: string | undefined, lane: Lane, now: number): number {
    const step = this.#stepOf(this.#pair(sourceIp, provider, now).record);
    return step === undefined ? 0 : HOUR_MS / laneCap(step.hourly, lane);
  }

  /** `count` messages of `lane` went out at `now`; a copy for each recipient counts one. */
  sent(sourceIp: string | undefined, provider: string | undefined, lane: Lane, now: number, count = 1): void {
    const pair = this.#pair(sourceIp, provider, now);
    const { record } = pair;
    record.sent += count;
    record.hourSent += count;
    record.daySent += count;
    const step = this.#stepOf(record);
    if (step !== undefined) {
      pair.paceAt = Math.max(pair.paceAt, now) + (count * HOUR_MS) / step.hourly;
      if (lane === "bulk") {
        pair.bulkPaceAt = Math.max(pair.bulkPaceAt, now) + (count * HOUR_MS) / laneCap(step.hourly, lane);
      }
    }
    this.#changed.add(keyOf(record.sourceIp, record.provider));
  }

  /**
   * What became of a message sent: counted in the current window, whose
   * rates decide the next step. `blocked`: refused for policy or spam
   * (`warmupOutcomeOf` in src/delivery says which replies are); a
   * complaint counts when it arrives.
   */
  outcome(sourceIp: string | undefined, provider: string | undefined, outcome: WarmupOutcome, now: number): void {
    const { record } = this.#pair(sourceIp, provider, now);
    record[outcome]++;
    this.#changed.add(keyOf(record.sourceIp, record.provider));
  }

  /** Every pair seen, brought up to `now`, by source IP and provider. */
  report(now: number): WarmupEntry[] {
    const keys = [...this.#pairs.keys()].sort();
    return keys.map((key) => {
      const { record } = this.#pairs.get(key)!;
      this.#roll(record, now);
      const plan = this.#planOf(record.provider);
      const step = this.#stepOf(record);
      const end = record.windowStart + plan.window;
      return {
        sourceIp: record.sourceIp,
        provider: record.provider,
        warm: step === undefined,
        step: Math.min(record.step, plan.steps.length),
        steps: plan.steps.length,
        stepSince: record.stepSince,
        ...(step === undefined ? {} : {
          caps: step,
          bulkCaps: { daily: laneCap(step.daily, "bulk"), hourly: laneCap(step.hourly, "bulk") },
          next: { ...judge(plan, record), at: end },
        }),
        hour: { start: record.hourStart, sent: record.hourSent },
        day: { start: record.dayStart, sent: record.daySent },
        window: {
          start: record.windowStart,
          end,
          sent: record.sent,
          delivered: record.delivered,
          deferred: record.deferred,
          blocked: record.blocked,
          complained: record.complained,
        },
        rates: ratesOf(record),
      };
    });
  }

  /**
   * Hand the records changed since the last flush to `save`. When it fails
   * they stay changed, and the next flush writes them as they are then.
   */
  async flush(save: (records: readonly WarmupRecord[]) => Promise<void>): Promise<void> {
    if (this.#changed.size === 0) return;
    const keys = [...this.#changed];
    this.#changed.clear();
    try {
      await save(keys.map((key) => ({ ...this.#pairs.get(key)!.record })));
    } catch (error) {
      for (const key of keys) this.#changed.add(key);
      throw error;
    }
  }

  #pair(ip: string | undefined, provider: string | undefined, now: number): Pair {
    let sourceIp = this.#canonicalIps.get(ip);
    if (sourceIp === undefined) {
      sourceIp = canonicalIp(ip);
      this.#canonicalIps.set(ip, sourceIp);
    }
    const name = provider ?? OTHER_PROVIDER;
    const key = keyOf(sourceIp, name);
    let pair = this.#pairs.get(key);
    if (pair === undefined) {
      pair = { record: freshRecord(sourceIp, name, now), paceAt: 0, bulkPaceAt: 0 };
      this.#pairs.set(key, pair);
      this.#changed.add(key);
    }
    this.#roll(pair.record, now);
    return pair;
  }

  #roll(record: WarmupRecord, now: number): void {
    const { windowStart, hourStart, dayStart } = record;
    const change = rollRecord(record, this.#planOf(record.provider), now);
    if (windowStart !== record.windowStart || hourStart !== record.hourStart || dayStart !== record.dayStart) {
      this.#changed.add(keyOf(record.sourceIp, record.provider));
    }
    if (change) {
      const steps = this.#planOf(record.provider).steps.length;
      const moved = change.action === "promote" ? "promoted" : "demoted";
      this.log?.("info", `warmup: ${moved} ${record.provider} from ${record.sourceIp}`, {
        source_ip: record.sourceIp,
        provider: record.provider,
        step: change.to >= steps ? "warm" : `${change.to + 1} of ${steps}`,
        reason: change.reason,
        at: new Date(change.at).toISOString(),
      });
    }
  }

  #planOf(provider: string): WarmupPlan {
    return this.plans.providers.get(provider) ?? this.plans.default;
  }

  /** The caps in force, or undefined when warm. */
  #stepOf(record: WarmupRecord): WarmupStep | undefined {
    return this.#planOf(record.provider).steps[record.step];
  }
}

/** A source IP as the ledger keys it: canonical form, or "any" when the relay binds none. */
export function canonicalIp(ip: string | undefined): string {
  if (ip === undefined) return ANY_SOURCE_IP;
  const value = ipToBigInt(ip);
  return value === undefined ? ip : formatIp(value);
}
