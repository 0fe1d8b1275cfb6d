import type { TimerClock } from "../core/clock.ts";
import { replyText } from "../core/reply.ts";
import type { AutomationState } from "../shaping/destination-automation.ts";
import { Destination, type DestinationLimits } from "./destination.ts";
import type { DestinationBook } from "./destination-book.ts";
import type { DeliveryMeter } from "./meter.ts";
import { Pacer } from "./pacing.ts";
import type { DestinationPlan } from "./plan.ts";
import type { Pacing } from "./shaping.ts";
import { DestinationSteering, type SteeredDestination, type SteeringDeps } from "./steering.ts";
import type { TlsTally } from "./tls-report/tally.ts";
import type { Payload, RecipientResult, Work } from "./work.ts";

export interface DestinationRegistryDeps {
  readonly clock: TimerClock;
  /** The destinations known: their shaping under the rules in force, and where their last reply is kept. */
  readonly book: Pick<DestinationBook, "entry">;
  readonly log: (level: "error", message: string, fields: Record<string, unknown>) => void;
  /** TLS reporting (RFC 8460): where sessions are counted; absent: RELAY_TLSRPT=false. */
  readonly tlsTally?: Pick<TlsTally, "add">;
  /** Automation and warmup (shaping); absent: neither. */
  readonly steering?: Omit<SteeringDeps, "clock">;
  /** Metrics: connections, attempts and commits as they happen; absent: not measured. */
  readonly meter?: DeliveryMeter;
  /** The message as the work sends it, loaded when a connection is ready; undefined when it is gone. */
  loadPayload(work: Work): Promise<Payload | undefined>;
  /** Work a destination handed back untried, to wait in the queue until `at`; `destination` is its plan's name. */
  postpone(work: Work, at: number, destination: string): void;
  /** Outcomes at a destination (as its steering saw them) to record, on its plan's retry schedule. */
  report(work: Work, results: RecipientResult[], retry: readonly number[], destination: string): void;
}

/** What a live destination adds to a destination's state: its pause, last error, work in flight and automation. */
export interface LiveState {
  /** Paused after failing to reach it (and why), until then. */
  readonly backoffUntil?: number;
  readonly lastError?: string;
  /** Recipients handed to it and not settled yet (waiting for a connection, or being sent). */
  readonly inFlight: number;
  /** A throttle or suspension that automation (the shaping rules' replies) holds it under now. */
  readonly automation?: Exclude<AutomationState, { kind: "normal" }>;
}

/**
 * The destinations delivery holds open, by key: each with its steering
 * (automation and warmup), its pacers (its own, or shared with others of its
 * provider), and how many recipients it holds that have not settled yet. A
 * destination is opened for the first work planned to it and forgotten once
 * idle.
 */
export class DestinationRegistry {
  private readonly destinations = new Map<string, Destination>();
  /** Each destination's automation and warmup, by the same key. */
  private readonly steerings = new Map<string, DestinationSteering>();
  /** Rates shared by several destinations (a provider's), by their key. */
  private readonly sharedPacers = new Map<string, Pacer>();
  /** Recipients handed to each destination (by key) and not settled yet. */
  private readonly inFlightAt = new Map<string, number>();

  constructor(private readonly deps: DestinationRegistryDeps) {}

  /** Hand work to the plan's destination, in transactions of at most the recipients it takes in one. */
  hand(plan: DestinationPlan, work: Work): void {
    this.inFlightAt.set(plan.key, (this.inFlightAt.get(plan.key) ?? 0) + work.claims.length);
    const destination = this.destination(plan);
    const most = Math.min(
      plan.recipientsPerTransaction ?? Infinity,
      this.steerings.get(plan.key)!.recipientsPerTransaction,
    );
    for (const part of transactions(work, most)) destination.enqueue(part);
  }

  /** What the destination at `key` has waiting for a connection, taken from it (no longer its in flight). */
  takeQueued(key: string): Work[] {
    const taken = this.destinations.get(key)?.takeQueued() ?? [];
    this.settledAt(key, taken);
    return taken;
  }

  /** End the destination's pause after failures: it is tried again at once. */
  unpause(key: string): void {
    const paused = this.destinations.get(key);
    if (paused) paused.suspendedUntil = 0;
  }

  /** End automation's throttle or suspension of the destination. */
  resumeAutomation(key: string): void {
    this.steerings.get(key)?.resume();
  }

  /** The state of the destination at `key` here now (nothing in flight when it is not open). */
  stateOf(key: string, now: number): LiveState {
    const destination = this.destinations.get(key);
    return {
      ...(destination && destination.suspendedUntil > now ? { backoffUntil: destination.suspendedUntil } : {}),
      ...(destination?.lastError === undefined ? {} : { lastError: destination.lastError }),
      inFlight: this.inFlightAt.get(key) ?? 0,
      ...automated(this.steerings.get(key)?.state),
    };
  }

  /**
   * The shaping rules changed: each destination takes its limits under them.
   * One whose domain the rules now send to a destination of another key gives
   * its queued work back (to `giveBack`, which returns it to the queue due
   * now), to be routed again.
   */
  reshape(giveBack: (moved: Work[]) => void): void {
    for (const [key, destination] of this.destinations) {
      const info = this.deps.book.entry(key)?.info;
      if (info === undefined) continue;
      const shaping = info.shaping();
      if (shaping) {
        const steering = this.steerings.get(key);
        steering?.reshape({
          own: shaping.own,
          messages: this.repace(steering.pacers.messages, shaping.messageRate),
          connections: this.repace(steering.pacers.connections, shaping.connectionRate),
        });
        destination.reshaped();
        continue;
      }
      giveBack(this.takeQueued(key));
    }
  }

  forgetIdle(): void {
    const now = this.deps.clock.now();
    for (const [key, destination] of this.destinations) {
      const steering = this.steerings.get(key);
      if (!destination.idle || destination.suspendedUntil > now || steering?.idle === false) continue;
      steering?.stop();
      this.destinations.delete(key);
      this.steerings.delete(key);
    }
  }

  /** Stop every destination and its steering; returns the work they held that no connection had taken. */
  stop(): Work[] {
    const untaken = [...this.destinations.values()].flatMap((destination) => destination.stop());
    for (const steering of this.steerings.values()) steering.stop();
    return untaken;
  }

  /** Close every connection at once (shutdown, after the grace period). */
  closeAll(): void {
    for (const destination of this.destinations.values()) destination.closeAll();
  }

  private destination(plan: DestinationPlan): Destination {
    const { key, limits, pacing, retry, transport } = plan;
    let destination = this.destinations.get(key);
    if (!destination) {
      const tally = this.deps.tlsTally;
      const steering = new DestinationSteering(
        {
          key,
          ...plan.steering ?? { own: ownLimits(limits, plan.recipientsPerTransaction) },
          messages: this.pacer(pacing?.messages),
          connections: this.pacer(pacing?.connections),
        },
        { clock: this.deps.clock, automation: () => [], changed: () => undefined, ...this.deps.steering },
      );
      const target = destination = new Destination(key, {
        transport: transport(),
        clock: this.deps.clock,
        limits: steering.limits,
        messages: steering.messages,
        connections: steering.connections,
        postpone: (work, at) => {
          this.settledAt(key, [work]);
          this.deps.postpone(work, at, plan.name);
        },
        loadPayload: (work) => this.deps.loadPayload(work),
        report: (work, results) => {
          this.settledAt(key, [work]);
          this.noteReply(key, results);
          this.deps.report(work, steering.observe(results), retry, plan.name);
        },
        backoff: (failures) => retry[Math.min(failures, retry.length) - 1]!,
        onError: (error) =>
          this.deps.log("error", "delivery failed unexpectedly", { destination: key, error: String(error) }),
        ...(tally ? { countTlsSessions: (domain, policy, sessions) => tally.add(domain, policy, sessions) } : {}),
        ...(this.deps.meter ? { meter: this.deps.meter.at(plan.steering?.provider) } : {}),
      });
      steering.onHold((until) => (until === undefined ? target.release() : target.hold(until)));
      this.destinations.set(key, destination);
      this.steerings.set(key, steering);
    }
    return destination;
  }

  /** A destination's own pacer, or the one it shares; none: no limit. */
  private pacer({ spacing, shared }: Pacing = { spacing: 0 }): Pacer {
    if (shared === undefined) return new Pacer(spacing);
    let pacer = this.sharedPacers.get(shared);
    if (!pacer) this.sharedPacers.set(shared, pacer = new Pacer(spacing));
    pacer.setSpacing(spacing);
    return pacer;
  }

  /** The pacer for `pacing` of a destination that had `current`: that one still, when both are its own. */
  private repace(current: Pacer, pacing: Pacing): Pacer {
    const wasShared = [...this.sharedPacers.values()].includes(current);
    if (pacing.shared !== undefined || wasShared) return this.pacer(pacing);
    current.setSpacing(pacing.spacing);
    return current;
  }

  /** The destination at `key` no longer holds this work. */
  private settledAt(key: string, works: readonly Work[]): void {
    const count = works.reduce((n, w) => n + w.claims.length, 0);
    const left = (this.inFlightAt.get(key) ?? 0) - count;
    if (left > 0) this.inFlightAt.set(key, left);
    else this.inFlightAt.delete(key);
  }

  /** The destination's last reply, for the queue summary. */
  private noteReply(key: string, results: readonly RecipientResult[]): void {
    const entry = this.deps.book.entry(key);
    const last = results.findLast((r) => r.attempted !== false);
    if (entry && last) entry.lastReply = { text: replyText(last.reply), at: this.deps.clock.now() };
  }
}

/** A destination's own limits when its plan names none of the shaping rules' (tests, the sandbox). */
function ownLimits(limits: DestinationLimits, recipientsPerTransaction = Infinity): SteeredDestination["own"] {
  return {
    connections: limits.maxConnections,
    messagesPerConnection: limits.maxMessagesPerConnection,
    idleTimeout: limits.idleMs,
    recipientsPerTransaction,
    connectionRate: "unlimited",
    messageRate: "unlimited",
  };
}

/** A message's work in pieces of at most `most` recipients. */
function transactions<T extends Work>(work: T, most = Infinity): T[] {
  if (work.claims.length <= most) return [work];
  const parts: T[] = [];
  for (let i = 0; i < work.claims.length; i += most) parts.push({ ...work, claims: work.claims.slice(i, i + most) });
  return parts;
}

/** Automation's state, when it is not normal. */
function automated(state: AutomationState | undefined): Pick<LiveState, "automation"> {
  return state === undefined || state.kind === "normal" ? {} : { automation: state };
}
