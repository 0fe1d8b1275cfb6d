import { percent } from "./checks.ts";
import type { WarmupPlan, WarmupRates } from "./rules.ts";

/**
 * The warmup state of one source IP towards one provider, as it is stored
 * (the warmup_state table) and as the ledger (warmup-ledger.ts) keeps it.
 * Every window starts where the previous one ended, from the first time the
 * pair was seen: the measurement window (the plan's `window`), the hour of
 * the hourly cap and the day of the daily cap. With the shipped one-day
 * window, a day of the daily cap is a window and runs at a single step.
 */
export interface WarmupRecord {
  /** Canonical form, or ANY_SOURCE_IP. */
  readonly sourceIp: string;
  readonly provider: string;
  /** Index into the plan's steps; the number of steps (or more) means warm. */
  step: number;
  stepSince: number;
  windowStart: number;
  /** Messages sent in the window, and what became of them. */
  sent: number;
  delivered: number;
  deferred: number;
  blocked: number;
  complained: number;
  hourStart: number;
  hourSent: number;
  dayStart: number;
  daySent: number;
}

/** What a window's counts call for. */
export type WarmupAction = "promote" | "hold" | "demote";

export interface Judgement {
  readonly action: WarmupAction;
  /** Why, in words: "deferral rate 25% is above demote_above's 20%". */
  readonly reason: string;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** The state of a pair seen for the first time at `now`: the first step, every count at zero. */
export function freshRecord(sourceIp: string, provider: string, now: number): WarmupRecord {
  return {
    sourceIp,
    provider,
    step: 0,
    stepSince: now,
    windowStart: now,
    sent: 0,
    delivered: 0,
    deferred: 0,
    blocked: 0,
    complained: 0,
    hourStart: now,
    hourSent: 0,
    dayStart: now,
    daySent: 0,
  };
}

/** The window's rates, as fractions of the messages sent in it (0 when none was). */
export function ratesOf(record: WarmupRecord): WarmupRates {
  const of = (count: number) => (record.sent === 0 ? 0 : count / record.sent);
  return {
    deferralRate: of(record.deferred),
    blockRate: of(record.blocked),
    complaintRate: of(record.complained),
  };
}

const RATE_NAMES: readonly [keyof WarmupRates, string][] = [
  ["deferralRate", "deferral rate"],
  ["blockRate", "block rate"],
  ["complaintRate", "complaint rate"],
];

/**
 * What the window's counts call for: back a step when any rate is above
 * `demote_above`; forward when every rate is below `promote_below`; held in
 * between, and when nothing was sent (no evidence is no reason to grow).
 */
export function judge(plan: WarmupPlan, record: WarmupRecord): Judgement {
  if (record.sent === 0) return { action: "hold", reason: "nothing was sent in the window" };
  const rates = ratesOf(record);
  for (const [name, words] of RATE_NAMES) {
    if (rates[name] > plan.demoteAbove[name]) {
      return {
        action: "demote",
        reason: `${words} ${percent(rates[name])} is above demote_above's ${percent(plan.demoteAbove[name])}`,
      };
    }
  }
  for (const [name, words] of RATE_NAMES) {
    if (rates[name] >= plan.promoteBelow[name]) {
      return {
        action: "hold",
        reason: `${words} ${percent(rates[name])} is not below promote_below's ${percent(plan.promoteBelow[name])}`,
      };
    }
  }
  return { action: "promote", reason: "every rate is below promote_below" };
}

/** The start of the period of `length` that holds `now`, counting whole periods from `start`. */
function periodStart(start: number, length: number, now: number): number {
  return now < start + length ? start : start + Math.floor((now - start) / length) * length;
}

/** A step change made when a window ended. */
export interface StepChange extends Judgement {
  readonly from: number;
  readonly to: number;
  readonly at: number;
}

/**
 * Bring the record up to `now`: a measurement window that ended is judged
 * and the step moved as it calls for, as of the window's end (a warm pair
 * stays warm: its warmup is over); the windows that followed it held
 * nothing, so they hold. Hour and day counts start again in a new hour or
 * day. Returns the step change, if there was one.
 */
export function rollRecord(record: WarmupRecord, plan: WarmupPlan, now: number): StepChange | undefined {
  let change: StepChange | undefined;
  const windowStart = periodStart(record.windowStart, plan.window, now);
  if (windowStart !== record.windowStart) {
    const warm = record.step >= plan.steps.length;
    const { action, reason } = judge(plan, record);
    const to = warm || action === "hold"
      ? record.step
      : action === "promote"
      ? record.step + 1
      : Math.max(0, record.step - 1);
    const at = record.windowStart + plan.window;
    if (to !== record.step) {
      change = { action, reason, from: record.step, to, at };
      record.step = to;
      record.stepSince = at;
    }
    record.windowStart = windowStart;
    record.sent =
      record.delivered =
      record.deferred =
      record.blocked =
      record.complained =
        0;
  }
  const hourStart = periodStart(record.hourStart, HOUR_MS, now);
  if (hourStart !== record.hourStart) {
    record.hourStart = hourStart;
    record.hourSent = 0;
  }
  const dayStart = periodStart(record.dayStart, DAY_MS, now);
  if (dayStart !== record.dayStart) {
    record.dayStart = dayStart;
    record.daySent = 0;
  }
  return change;
}
