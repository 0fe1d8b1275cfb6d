import type { TimerClock } from "../core/clock.ts";
import {
  type AutomationState,
  DestinationAutomation,
  type DestinationChange,
  type OwnLimits,
} from "../shaping/destination-automation.ts";
import type { AutomationRule } from "../shaping/rules.ts";
import type { WarmupLedger } from "../shaping/warmup-ledger.ts";
import { classifyReply } from "./classify.ts";
import type { DestinationLimits } from "./destination.ts";
import { allOf, type Gate, Pacer, spacingOf } from "./pacing.ts";
import { warmupOutcomeOf } from "./warmup-outcome.ts";
import type { RecipientResult } from "./work.ts";

/** What steers every destination: the automation rules and where their changes go, and warmup. */
export interface SteeringDeps {
  readonly clock: TimerClock;
  /** The shaping rules' `automation` in force, in the order they are tried. */
  readonly automation: () => readonly AutomationRule[];
  /** A destination's change of state (throttled, suspended, resumed), for the event log. */
  readonly changed: (change: DestinationChange, destination: string, provider: string | undefined) => void;
  /** IP warmup, when the rules switch it on; `sourceIp` is the node's (undefined: it binds none). */
  readonly warmup?: { readonly ledger: WarmupLedger; readonly sourceIp?: string };
}

/** One destination as the rules see it: its provider, its own limits and its rate pacers. */
export interface SteeredDestination {
  readonly key: string;
  readonly provider?: string;
  readonly own: OwnLimits & { readonly idleTimeout: number };
  readonly messages: Pacer;
  readonly connections: Pacer;
}

/**
 * How one destination is steered beyond its own limits: by automation (a
 * throttle tightens its limits and rates for a while, a suspension holds it)
 * and by warmup (caps per source IP and provider). The destination reads
 * its limits and asks its gates here each time, so a change applies to the
 * next message and the next connection.
 */
export class DestinationSteering {
  readonly messages: Gate;
  readonly connections: Gate;
  readonly limits: DestinationLimits;
  private readonly automation: DestinationAutomation;
  private readonly throttledMessages = new Pacer(0);
  private readonly throttledConnections = new Pacer(0);
  /** Told when a suspension starts (until then) or ends (undefined). */
  private hold: (until: number | undefined) => void = () => undefined;

  constructor(private destination: SteeredDestination, private readonly deps: SteeringDeps) {
    const { own, provider, key } = destination;
    this.automation = new DestinationAutomation({
      rules: deps.automation(),
      provider,
      own,
      clock: deps.clock,
      onChange: (change) => {
        if (change.type === "destination_suspended") this.hold(change.until);
        if (change.type === "destination_resumed") this.hold(undefined);
        deps.changed(change, key, provider);
      },
    });
    const throttle = () => {
      const state = this.automation.state(deps.clock.now());
      return state?.kind === "throttled" ? state.limits : undefined;
    };
    const throttled = (pacer: Pacer, rate: "messageRate" | "connectionRate"): Gate[] => {
      const limit = throttle()?.[rate];
      if (limit === undefined) return [];
      pacer.setSpacing(spacingOf(limit));
      return [pacer];
    };
    const warmup = deps.warmup;
    const warmupGate: Gate[] = warmup
      ? [{
        nextAt: (now, lane) => warmup.ledger.nextSendAt(warmup.sourceIp, provider, lane, now),
        take: (now, lane) => warmup.ledger.sent(warmup.sourceIp, provider, lane, now),
        spacing: (lane) => warmup.ledger.spacing(warmup.sourceIp, provider, lane, deps.clock.now()),
      }]
      : [];
    this.messages = allOf(
      () => [this.destination.messages, ...throttled(this.throttledMessages, "messageRate"), ...warmupGate],
    );
    this.connections = allOf(
      () => [this.destination.connections, ...throttled(this.throttledConnections, "connectionRate")],
    );
    const tightest = (name: "connections" | "messagesPerConnection") =>
      Math.min(this.destination.own[name], throttle()?.[name] ?? Infinity);
    const ownIdle = () => this.destination.own.idleTimeout;
    this.limits = {
      get maxConnections() {
        return tightest("connections");
      },
      get maxMessagesPerConnection() {
        return tightest("messagesPerConnection");
      },
      get idleMs() {
        return ownIdle();
      },
    };
  }

  /** Its rate pacers: a rule change keeps their state when they stay its own. */
  get pacers(): Pick<SteeredDestination, "messages" | "connections"> {
    return this.destination;
  }

  /**
   * The shaping rules changed (PUT /v1/shaping): its own limits and pacers
   * are these now, and automation follows the rules in force; a throttle
   * or suspension in force stays.
   */
  reshape(now: Omit<SteeredDestination, "key" | "provider">): void {
    this.destination = { ...this.destination, ...now };
    this.automation.update(this.deps.automation(), now.own);
  }

  /** Recipients in one transaction now: the destination's own, or a throttle's if tighter. */
  get recipientsPerTransaction(): number {
    const state = this.automation.state(this.deps.clock.now());
    const throttled = state.kind === "throttled" ? state.limits.recipientsPerTransaction : undefined;
    return Math.min(this.destination.own.recipientsPerTransaction, throttled ?? Infinity);
  }

  /** Where a suspension is carried out: the destination holds its work until then (undefined: resumed). */
  onHold(hold: (until: number | undefined) => void): void {
    this.hold = hold;
  }

  /**
   * Replies of an attempt: each one tried is shown to automation (a rule
   * whose action is bounce turns that recipient's deferral into a bounce)
   * and counted by warmup.
   */
  observe(results: readonly RecipientResult[]): RecipientResult[] {
    const now = this.deps.clock.now();
    return results.map((result) => {
      if (result.attempted === false || result.untried) return result;
      const warmup = this.deps.warmup;
      const counted = warmupOutcomeOf(result);
      if (warmup && counted) warmup.ledger.outcome(warmup.sourceIp, this.destination.provider, counted, now);
      if (result.disposition === "delivered") return result;
      if (!this.automation.observe(result.reply).bounce) return result;
      return { ...result, ...classifyReply(result.reply), disposition: "bounced" };
    });
  }

  /** What automation does to the destination now. */
  get state(): AutomationState {
    return this.automation.state(this.deps.clock.now());
  }

  /** The operator resumes the destination: what automation slowed or stopped goes at its own limits again. */
  resume(): void {
    this.automation.resume();
  }

  /** Nothing to remember: not throttled or suspended, no reply counting toward a threshold. */
  get idle(): boolean {
    return this.automation.isIdle(this.deps.clock.now());
  }

  stop(): void {
    this.automation.stop();
  }
}
