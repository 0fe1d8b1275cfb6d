import type { TimerClock } from "../core/clock.ts";
import { type Reply, replyText } from "../core/reply.ts";
import { matchAutomation } from "./automation.ts";
import type { AutomationAction, AutomationRule, CompleteLimits, ThrottleLimitName, ThrottleLimits } from "./rules.ts";
import { recoveryLimits, sameLimits, setsAnyOf, tighterLimits } from "./throttle-limits.ts";

/** What changed a destination's state: an automation rule that a reply matched, or the operator. */
export type Cause = RuleCause | { readonly reason: "operator" };

export interface RuleCause {
  readonly reason: "automation";
  readonly rule: string;
  /** The reply that made the rule act, on one line. */
  readonly reply: string;
}

export interface Throttled {
  readonly kind: "throttled";
  /** The limits in force; each applies where it is tighter than the destination's own. */
  readonly limits: ThrottleLimits;
  /** These limits hold until then: a recovery step loosens them, or the throttle ends. */
  readonly until: number;
  /** Back to the destination's own limits then, when the last recovery step comes. */
  readonly ends: number;
  /** The rule that acted last of those that hold a limit down. */
  readonly cause: RuleCause;
}

export interface Suspended {
  readonly kind: "suspended";
  /** When it ends by itself (an operator may resume it sooner). */
  readonly until: number;
  readonly cause: Cause;
}

export type AutomationState = { readonly kind: "normal" } | Throttled | Suspended;

/** A change of a destination's state, reported once, when it happens: the event of the same type. */
export type DestinationChange =
  | ({ readonly type: "destination_throttled"; readonly at: number } & Omit<Throttled, "kind">)
  | ({ readonly type: "destination_suspended"; readonly at: number } & Omit<Suspended, "kind">)
  | {
    readonly type: "destination_resumed";
    readonly at: number;
    /** What had slowed or stopped the destination: the rule whose time ran out, or the operator who resumed it. */
    readonly cause: Cause;
  };

export interface Observation {
  /** The rule the reply matched, if any; it counted toward the rule's threshold even when it did not act. */
  readonly rule?: AutomationRule;
  /** The rule acted on this reply: its threshold was reached, or it has none. */
  readonly acted: boolean;
  /** The recipient that got the reply bounces now instead of being retried. */
  readonly bounce: boolean;
}

/** The destination's own values of the limits a throttle may set: what recovery leads back to. */
export type OwnLimits = Pick<CompleteLimits, ThrottleLimitName>;

export interface AutomationOptions {
  /** In the order they are tried (`ShapingRules.automation`). */
  readonly rules: readonly AutomationRule[];
  /** The destination's provider, whose own rules come first; undefined: the rules for any destination only. */
  readonly provider: string | undefined;
  readonly own: OwnLimits;
  /** Its timers report the changes that come with time (a suspension over, a recovery step); none while normal. */
  readonly clock: TimerClock;
  /** Told of every change as it happens, from observe(), suspend(), resume() or a timer; must not throw. */
  readonly onChange: (change: DestinationChange) => void;
}

/** One rule's throttle: its limits until `until`, then `steps` steps `every` apart back to the own limits. */
interface Throttle {
  readonly limits: ThrottleLimits;
  /** When the first recovery step comes (without recovery, the only one: the end). */
  readonly until: number;
  readonly steps: number;
  readonly every: number;
  readonly cause: RuleCause;
}

interface Suspension {
  readonly until: number;
  readonly cause: Cause;
}

/** Replies that matched a rule with a threshold, within its window: at most `matches - 1` times. */
interface Count {
  readonly within: number;
  times: number[];
}

const NORMAL: AutomationState = { kind: "normal" };
const OPERATOR: Cause = { reason: "operator" };

/** The throttle's step at `now`: 0 before `until`, then one more every `every`; `steps` when it is over. */
function stepAt(throttle: Throttle, now: number): number {
  if (now < throttle.until) return 0;
  if (throttle.steps === 1) return 1;
  return Math.min(throttle.steps, 1 + Math.floor((now - throttle.until) / throttle.every));
}

const inForce = (throttle: Throttle, now: number) => stepAt(throttle, now) < throttle.steps;

/** When a throttle in force at `after` takes its next step, or ends. */
const nextStep = (throttle: Throttle, after: number) => throttle.until + stepAt(throttle, after) * throttle.every;

const endOf = (throttle: Throttle) => throttle.until + (throttle.steps - 1) * throttle.every;

function sameState(a: AutomationState, b: AutomationState): boolean {
  if (a.kind === "normal" || b.kind === "normal") return a.kind === b.kind;
  if (a.kind !== b.kind || a.until !== b.until) return false;
  if (a.kind === "suspended") return true;
  const other = b as Throttled;
  return a.ends === other.ends && sameLimits(a.limits, other.limits);
}

/**
 * Response-driven automation for one destination (issue 13): each reply it
 * gets is matched against the automation rules (the provider's first, then
 * those for any destination; the first that matches acts), and a rule acts
 * once its threshold of matching replies came within its window.
 *
 * - throttle: tighter limits for `duration`; then recovery in `steps`
 *   steps, the first when `duration` ends and one every `every` after it,
 *   the limits growing geometrically back to the destination's own (see
 *   recoveryLimits), the last step being the own limits.
 * - suspend: nothing goes for `duration`. A suspension lies over a
 *   throttle: when it ends, the throttle's remaining time still applies.
 * - bounce: observe() says so, for the recipient that got the reply.
 *
 * Throttles of different rules hold together: at every moment each limit
 * is the tightest any of them sets, until the last one ends. A rule that
 * acts again replaces its own throttle (the new one ends later). A
 * suspension while suspended keeps the later end. The operator's suspend()
 * and resume() override both.
 */
export class DestinationAutomation {
  #rules: readonly AutomationRule[];
  #own: OwnLimits;
  readonly #provider: string | undefined;
  readonly #clock: TimerClock;
  readonly #onChange: (change: DestinationChange) => void;
  /** At most one per rule, in the order they acted. */
  #throttles: Throttle[] = [];
  #suspension: Suspension | undefined;
  readonly #counts = new Map<string, Count>();
  /** The state last reported to onChange. */
  #shown: AutomationState = NORMAL;
  /** The changes that came with time are reported up to here. */
  #checked: number;
  #timer: unknown;

  constructor(options: AutomationOptions) {
    this.#rules = options.rules;
    this.#own = options.own;
    this.#provider = options.provider;
    this.#clock = options.clock;
    this.#onChange = options.onChange;
    this.#checked = options.clock.now();
  }

  /** Take in a reply the destination gave (any reply; only failures can match). */
  observe(reply: Reply): Observation {
    const now = this.#catchUp();
    const rule = matchAutomation(this.#rules, reply, this.#provider);
    if (!rule) return { acted: false, bounce: false };
    if (!this.#thresholdReached(rule, now)) return { rule, acted: false, bounce: false };
    const cause: RuleCause = { reason: "automation", rule: rule.name, reply: replyText(reply) };
    const { action } = rule;
    if (action.kind === "throttle") this.#addThrottle(action, cause, now);
    if (action.kind === "suspend") this.#addSuspension(now + action.duration, cause, now);
    this.#settle(now);
    return { rule, acted: true, bounce: action.kind === "bounce" };
  }

  /** The state at `now`. */
  state(now: number = this.#clock.now()): AutomationState {
    const suspension = this.#suspension;
    if (suspension && now < suspension.until) {
      return { kind: "suspended", until: suspension.until, cause: suspension.cause };
    }
    const active = this.#throttles.filter((throttle) => inForce(throttle, now));
    const limits = this.#limitsAt(now);
    if (!limits) return NORMAL;
    // A step that loosens nothing in force (a throttle under another's tighter limits) changes nothing.
    let until = this.#nextThrottleStep(now);
    while (until !== undefined && sameLimits(this.#limitsAt(until) ?? {}, limits)) {
      until = this.#nextThrottleStep(until);
    }
    const ends = Math.max(...active.map(endOf));
    const holding = active.filter((throttle) => setsAnyOf(this.#throttleLimits(throttle, now), limits));
    return { kind: "throttled", limits, until: until ?? ends, ends, cause: (holding.at(-1) ?? active.at(-1)!).cause };
  }

  /** The operator lifts any suspension and throttle at once. */
  resume(): void {
    const now = this.#catchUp();
    this.#suspension = undefined;
    this.#throttles = [];
    this.#settle(now, OPERATOR);
  }

  /** New rules (a reload): they match from now on; throttles in force recover toward the new own limits. */
  update(rules: readonly AutomationRule[], own: OwnLimits): void {
    const now = this.#catchUp();
    this.#rules = rules;
    this.#own = own;
    this.#settle(now);
  }

  /** Nothing to remember at `now`: normal, and no reply counting toward a threshold; the owner may drop it. */
  isIdle(now: number = this.#clock.now()): boolean {
    if (this.state(now).kind !== "normal") return false;
    return [...this.#counts.values()].every((count) => count.times.every((at) => at <= now - count.within));
  }

  /** Cancel the timer (the destination is dropped). */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One throttle's limits at `now`, while it is in force. */
  #throttleLimits(throttle: Throttle, now: number): ThrottleLimits {
    const step = stepAt(throttle, now);
    return step === 0 ? throttle.limits : recoveryLimits(throttle.limits, this.#own, step, throttle.steps);
  }

  /** The tightest of the throttles in force at `now`, limit by limit; undefined when none is. */
  #limitsAt(now: number): ThrottleLimits | undefined {
    const all = this.#throttles.filter((t) => inForce(t, now)).map((t) => this.#throttleLimits(t, now));
    return all.length === 0 ? undefined : all.reduce(tighterLimits);
  }

  /** The next time after `after` that a throttle in force takes a step or ends. */
  #nextThrottleStep(after: number): number | undefined {
    const times = this.#throttles.filter((t) => inForce(t, after)).map((t) => nextStep(t, after));
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /** Count a matching reply; true when that makes the threshold (and the count starts again). */
  #thresholdReached(rule: AutomationRule, now: number): boolean {
    if (!rule.threshold) return true;
    const { matches, within } = rule.threshold;
    const times = [...(this.#counts.get(rule.name)?.times ?? []).filter((at) => at > now - within), now];
    if (times.length >= matches) {
      this.#counts.delete(rule.name);
      return true;
    }
    this.#counts.set(rule.name, { within, times });
    return false;
  }

  #addThrottle(action: Extract<AutomationAction, { kind: "throttle" }>, cause: RuleCause, now: number): void {
    const { steps, every } = action.recovery ?? { steps: 1, every: 0 };
    const others = this.#throttles.filter((t) => t.cause.rule !== cause.rule && inForce(t, now));
    this.#throttles = [...others, { limits: action.limits, until: now + action.duration, steps, every, cause }];
  }

  #addSuspension(until: number, cause: Cause, now: number): void {
    const suspension = this.#suspension;
    if (suspension && suspension.until > now && suspension.until >= until) return;
    this.#suspension = { until, cause };
  }

  /** The next time after `after` at which the state may change by itself. */
  #nextChange(after: number): number | undefined {
    const suspensionEnd = this.#suspension && this.#suspension.until > after ? this.#suspension.until : undefined;
    const step = this.#nextThrottleStep(after);
    return suspensionEnd === undefined || step === undefined ? suspensionEnd ?? step : Math.min(suspensionEnd, step);
  }

  /** Report the changes that came with time up to now, in order, and forget what is over; returns now. */
  #catchUp(): number {
    const now = this.#clock.now();
    for (let at = this.#nextChange(this.#checked); at !== undefined && at <= now; at = this.#nextChange(at)) {
      this.#show(at);
    }
    this.#checked = Math.max(this.#checked, now);
    if (this.#suspension && this.#suspension.until <= now) this.#suspension = undefined;
    this.#throttles = this.#throttles.filter((throttle) => inForce(throttle, now));
    return now;
  }

  /** Report the state at `now` if it changed, then wait for the next change that comes with time. */
  #settle(now: number, resumedBy?: Cause): void {
    this.#show(now, resumedBy);
    this.#schedule();
  }

  #show(at: number, resumedBy?: Cause): void {
    const next = this.state(at);
    const ended = this.#shown;
    if (sameState(next, ended)) return;
    this.#shown = next;
    if (next.kind === "normal") {
      const cause = resumedBy ?? (ended as Throttled | Suspended).cause;
      this.#onChange({ type: "destination_resumed", at, cause });
      return;
    }
    if (next.kind === "suspended") {
      this.#onChange({ type: "destination_suspended", at, until: next.until, cause: next.cause });
      return;
    }
    const { limits, until, ends, cause } = next;
    this.#onChange({ type: "destination_throttled", at, limits, until, ends, cause });
  }

  #schedule(): void {
    this.stop();
    const next = this.#nextChange(this.#checked);
    if (next === undefined || !Number.isFinite(next)) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#catchUp();
      this.#schedule();
    }, next - this.#clock.now());
  }
}
