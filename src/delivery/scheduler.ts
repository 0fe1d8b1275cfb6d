import { asciiDomain, domainNameError } from "../core/address.ts";
import type { TimerClock } from "../core/clock.ts";
import { type Lane, lanes } from "../core/lane.ts";
import { type Reply, reply, replyText } from "../core/reply.ts";
import type { Claim } from "../queue/records.ts";
import type { SettingsStore } from "../queue/settings.ts";
import type { RecipientSelector } from "../queue/recipient-selector.ts";
import type { QueueStore } from "../queue/store.ts";
import { classifyTransportError } from "./classify.ts";
import { Destination, type DestinationLimits } from "./destination.ts";
import { DestinationBook, type DestinationEntry, type DestinationInfo, type Suspension } from "./destination-book.ts";
import { DsnSweeper } from "./dsn-sweeper.ts";
import { Pacer } from "./pacing.ts";
import { DestinationSteering, type SteeredDestination, type SteeringDeps } from "./steering.ts";
import type { AutomationState, DestinationChange } from "../shaping/destination-automation.ts";
import type { Pacing } from "./shaping.ts";
import type { DeliveryMeter } from "./meter.ts";
import { OutcomeRecorder } from "./outcomes.ts";
import { verpAddress, type VerpKey } from "../core/verp.ts";
import type { RetryPolicy } from "./retry.ts";
import type { ReportPolicy } from "./tls-report/policy.ts";
import type { TlsTally } from "./tls-report/tally.ts";
import { type TlsRule, tlsRuleFor } from "./tls-rule.ts";
import type { RecipientResult, Transport, Work } from "./work.ts";

type Log = (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;

/**
 * Where a domain's mail goes now: a destination (its key, name, MX hosts and
 * shaping), its limits when the plan was made, its retry schedule and how
 * to open connections to it; with `tlsReport`, the policy its sessions are
 * counted under for TLS reporting (RFC 8460). Mail that goes nowhere is
 * deferred on the `retry` schedule given (the shaping rules' default level)
 * or bounced.
 */
export type Plan =
  | DestinationPlan
  | {
    readonly kind: "bounce" | "defer";
    readonly results: (addresses: readonly string[]) => RecipientResult[];
    readonly retry: readonly number[];
  };

export interface DestinationPlan extends DestinationInfo {
  readonly kind: "destination";
  readonly limits: DestinationLimits;
  /** Message and connection rates (shaping), each the destination's own or shared (see shaping.ts); absent: none. */
  readonly pacing?: { readonly messages: Pacing; readonly connections: Pacing };
  /** At most this many recipients in one transaction: a work item each, so the message rate counts transactions. */
  readonly recipientsPerTransaction?: number;
  /** For automation and warmup: the provider and the destination's own limits; absent: the limits above. */
  readonly steering?: Pick<SteeredDestination, "provider" | "own">;
  /** Delays between attempts after a temporary failure there; the last one repeats. */
  readonly retry: readonly number[];
  readonly transport: () => Transport;
  readonly tlsReport?: ReportPolicy;
}

/** A destination as GET /v1/queue shows it, with what this node holds for it now. */
export interface DestinationState {
  readonly info: DestinationInfo;
  /** Recipient domains routed to it (and those its suspension holds). */
  readonly domains: readonly string[];
  /** The operator's suspension in force. */
  readonly suspension?: Suspension;
  /** Paused after failing to reach it (and why), until then. */
  readonly backoffUntil?: number;
  readonly lastError?: string;
  readonly lastReply?: DestinationEntry["lastReply"];
  /** Recipients handed to it and not settled yet (waiting for a connection, or being sent). */
  readonly inFlight: number;
  /** A throttle or suspension that automation (the shaping rules' replies) holds it under now. */
  readonly automation?: Exclude<AutomationState, { kind: "normal" }>;
}

/** What an operator's request for a destination found: the destination and the recipient domains it holds. */
export type ResolvedDestination =
  | { readonly found: true; readonly key: string; readonly name: string; readonly domains: readonly string[] }
  | { readonly found: false; readonly reason: string };

export interface SchedulerDeps {
  readonly store: QueueStore;
  /** Where the operator's destination suspensions are kept across restarts. */
  readonly settings: Pick<SettingsStore, "getSetting" | "setSetting">;
  readonly clock: TimerClock;
  /** The max queue time, and the schedule of recipients whose routing failed: the shaping rules' default level's. */
  readonly retry: RetryPolicy;
  /** RELAY_GREYLIST_RETRY: the retry after a recipient's first greylisting reply. */
  readonly greylistRetry: number;
  readonly hostname: string;
  readonly log: Log;
  /** Route a domain's mail held to a TLS rule to a destination (MX site, static route, or the sandbox). */
  readonly plan: (domain: string, rule: TlsRule) => Promise<Plan>;
  /** Recipients leased and not yet settled, at most; bulk ones at most bulkInFlightCap of it. */
  readonly maxInFlight?: number;
  /** How long a claim is ours; longer than the slowest attempt. */
  readonly leaseMs?: number;
  /** RELAY_DELAY_WARNING_AFTER: a "delayed" DSN once a recipient has waited this long; 0 turns it off. Default 4h. */
  readonly delayWarningAfter?: number;
  /** How often the DSN sweeper looks for reports to send. Default 1s. */
  readonly dsnSweepMs?: number;
  /** TLS reporting (RFC 8460): where sessions are counted; absent: RELAY_TLSRPT=false. */
  readonly tlsTally?: Pick<TlsTally, "add">;
  /** Automation and warmup (shaping); absent: neither. */
  readonly steering?: Omit<SteeringDeps, "clock">;
  /** The key of VERP return paths' tags (core/verp.ts, app/verp-key.ts). */
  readonly verpKey: VerpKey;
  /**
   * A copy of its own for each recipient in the lanes it applies to (bulk
   * mail's List-Unsubscribe, src/unsubscribe/): such a recipient is sent a
   * transaction of its own, with the body `copyFor` makes of the stored one.
   */
  readonly perRecipientCopy?: {
    applies(lane: Lane): boolean;
    copyFor(body: Uint8Array, recipientId: number): Promise<Uint8Array>;
  };
  /** Metrics: connections, attempts and commits as they happen; absent: not measured. */
  readonly meter?: DeliveryMeter;
}

/** Sendmail's Timeout.queuewarn: the default of RELAY_DELAY_WARNING_AFTER. */
export const DEFAULT_DELAY_WARNING_AFTER = 4 * 3_600_000;

/** The longest the scheduler sleeps before it looks for due recipients again. */
export const IDLE_POLL_MS = 1000;
/** How long a batch waits for all its domains' plans before each goes out on its own. */
export const PLAN_WAIT_MS = 2000;
const CLAIM_BATCH = 500;

/**
 * How many of maxInFlight recipients in flight may be bulk: a tenth is kept
 * for transactional ones (at least one slot, unless that would leave bulk
 * none), so a transactional recipient can always be claimed, however many
 * bulk ones are claimed and waiting at their destinations.
 */
export function bulkInFlightCap(maxInFlight: number): number {
  return maxInFlight - Math.min(maxInFlight - 1, Math.max(1, Math.floor(maxInFlight / 10)));
}
/** After the grace period, how long connections closed at once have to hand back their outcomes. */
export const CLOSED_SETTLE_MS = 2000;

/**
 * The delivery scheduler: lease due recipients (an indexed query on the due
 * time, so its cost does not grow with the queue), route each domain to its
 * destination, and let destinations deliver; outcomes come back through the
 * recorder. It sleeps until the next due time or until an enqueue wakes it.
 */
export class Scheduler {
  private running = false;
  private inFlight = 0;
  /** Of inFlight, the bulk lane's. */
  private inFlightBulk = 0;
  /** Ends the sleep in progress; a wake while none is makes the next one end at once, so it is not lost. */
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private loopDone: Promise<void> | undefined;
  private readonly destinations = new Map<string, Destination>();
  /** Each destination's automation and warmup, by the same key. */
  private readonly steerings = new Map<string, DestinationSteering>();
  /** Rates shared by several destinations (a provider's), by their key. */
  private readonly sharedPacers = new Map<string, Pacer>();
  /** Recipients handed to each destination (by key) and not settled yet. */
  private readonly inFlightAt = new Map<string, number>();
  private readonly book: DestinationBook;
  private readonly recorder: OutcomeRecorder;
  private readonly maxInFlight: number;
  private readonly maxBulkInFlight: number;
  private readonly leaseMs: number;
  private readonly dsns: DsnSweeper;
  private readonly dsnSweepMs: number;
  private nextSweepAt = 0;
  private sweeping: Promise<void> | undefined;

  constructor(private readonly deps: SchedulerDeps) {
    this.maxInFlight = deps.maxInFlight ?? 5000;
    this.maxBulkInFlight = bulkInFlightCap(this.maxInFlight);
    this.leaseMs = deps.leaseMs ?? 30 * 60_000;
    this.dsnSweepMs = deps.dsnSweepMs ?? 1000;
    this.book = new DestinationBook(deps.settings);
    this.dsns = new DsnSweeper({
      store: deps.store,
      clock: deps.clock,
      hostname: deps.hostname,
      maxQueueTime: deps.retry.maxQueueTime,
      log: deps.log,
    });
    this.recorder = new OutcomeRecorder({
      store: deps.store,
      clock: deps.clock,
      maxQueueTime: deps.retry.maxQueueTime,
      greylistRetry: deps.greylistRetry,
      delayWarningAfter: deps.delayWarningAfter ?? DEFAULT_DELAY_WARNING_AFTER,
      log: deps.log,
      settled: (claims) => {
        this.count(claims, -1);
        this.wake();
      },
      ...(deps.meter ? { meter: deps.meter } : {}),
    });
  }

  async start(): Promise<void> {
    const released = await this.deps.store.releaseLeases();
    if (released > 0) this.deps.log("info", "resuming recipients leased before a restart", { count: released });
    await this.book.load(this.deps.clock.now());
    this.running = true;
    this.loopDone = this.run();
  }

  wake(): void {
    if (this.wakeUp) this.wakeUp();
    else this.woken = true;
  }

  /** The destinations this node knows (routed to lately, or suspended), with their state now. */
  destinationStates(): DestinationState[] {
    const now = this.deps.clock.now();
    const suspended = new Map(this.book.suspended(now));
    const states: DestinationState[] = [];
    for (const entry of this.book.all()) {
      const key = entry.info.key;
      states.push(this.stateOf(key, entry.info, suspended.get(key), now));
      suspended.delete(key);
    }
    for (const [key, suspension] of suspended) {
      const info: DestinationInfo = { key, name: suspension.name, mxHosts: [], shaping: () => undefined };
      states.push(this.stateOf(key, info, suspension, now));
    }
    return states;
  }

  private stateOf(
    key: string,
    info: DestinationInfo,
    suspension: Suspension | undefined,
    now: number,
  ): DestinationState {
    const entry = this.book.entry(key);
    const destination = this.destinations.get(key);
    return {
      info,
      domains: [...new Set([...(entry?.domains ?? []), ...(suspension?.domains ?? [])])],
      ...(suspension ? { suspension } : {}),
      ...(destination && destination.suspendedUntil > now ? { backoffUntil: destination.suspendedUntil } : {}),
      ...(destination?.lastError === undefined ? {} : { lastError: destination.lastError }),
      ...(entry?.lastReply ? { lastReply: entry.lastReply } : {}),
      inFlight: this.inFlightAt.get(key) ?? 0,
      ...automated(this.steerings.get(key)?.state),
    };
  }

  /**
   * The destination `ref` names: a destination's name (as GET /v1/queue
   * shows it), or a recipient domain, which names the destination its mail
   * goes to now (routed as a message to it would be).
   */
  async resolve(ref: string): Promise<ResolvedDestination> {
    const named = this.book.keyNamed(ref);
    if (named !== undefined) return this.found(named, ref);
    if (domainNameError(ref, true) !== undefined) {
      return { found: false, reason: `no destination is named ${JSON.stringify(ref)}, and it is no domain` };
    }
    const domain = asciiDomain(ref);
    const plan = await this.planFor(domain, "recipient-policy");
    if (plan.kind !== "destination") {
      const [result] = plan.results([`postmaster@${domain}`]);
      return { found: false, reason: `mail for ${domain} has no destination now: ${replyText(result!.reply)}` };
    }
    this.book.note(plan, domain);
    return this.found(plan.key, plan.name);
  }

  private found(key: string, name: string): ResolvedDestination {
    const domains = this.book.entry(key)?.domains ?? [];
    const suspension = this.book.suspension(key, this.deps.clock.now());
    return { found: true, key, name, domains: [...new Set([...domains, ...(suspension?.domains ?? [])])] };
  }

  /**
   * Attempt nothing at the destination until about `until`: the work it
   * holds and what is routed to it meanwhile go back to the queue, due when
   * the suspension ends, with no attempt counted. A transaction under way
   * finishes. Kept across a restart. A suspension in force is replaced, and
   * what it held waits for the new end. Returns the end: `until`, or a
   * millisecond or so later, so that no two suspensions end at once and the
   * hold time alone says whose a held recipient is.
   */
  async suspend(destination: Extract<ResolvedDestination, { found: true }>, until: number): Promise<number> {
    const { key, name, domains } = destination;
    const now = this.deps.clock.now();
    const taken = new Set(this.book.suspended(now).filter(([k]) => k !== key).map(([, s]) => s.until));
    let end = until;
    while (taken.has(end)) end += 1;
    const previous = this.book.suspension(key, now);
    await this.book.suspend(key, { until: end, name, domains });
    if (previous) await this.deps.store.moveHeld(previous.until, end);
    const held = this.destinations.get(key)?.takeQueued() ?? [];
    this.settledAt(key, held);
    this.hold(held, end);
    this.operatorChanged(key, { type: "destination_suspended", at: now, until: end, cause: { reason: "operator" } });
    return end;
  }

  /**
   * Lift the operator's suspension and any pause after failures: what the
   * suspension held and every deferred recipient of the destination's
   * domains is due now. Returns how many were made due.
   */
  async resume(destination: Extract<ResolvedDestination, { found: true }>): Promise<number> {
    const lifted = await this.book.resume(destination.key);
    this.steerings.get(destination.key)?.resume();
    const paused = this.destinations.get(destination.key);
    if (paused) paused.suspendedUntil = 0;
    const held = lifted ? await this.deps.store.moveHeld(lifted.until, this.deps.clock.now()) : 0;
    const due = held + await this.deps.store.dueNowAt(destination.domains);
    if (lifted) {
      const at = this.deps.clock.now();
      this.operatorChanged(destination.key, { type: "destination_resumed", at, cause: { reason: "operator" } });
    }
    this.wake();
    return due;
  }

  /**
   * Try the destination now: every deferred recipient of its domains is due
   * now, and a pause after failures is over. An operator's suspension stays.
   * Returns how many were made due.
   */
  async retry(destination: Extract<ResolvedDestination, { found: true }>): Promise<number> {
    const paused = this.destinations.get(destination.key);
    if (paused) paused.suspendedUntil = 0;
    const due = await this.deps.store.dueNowAt(destination.domains);
    this.wake();
    return due;
  }

  /**
   * Bounce every recipient queued for the destination that is not being
   * sent now (a transaction under way finishes): each gets its bounced event
   * and the DSN its NOTIFY asks for. Returns how many.
   */
  async bounce(destination: Extract<ResolvedDestination, { found: true }>): Promise<number> {
    const r = reply(554, "5.0.0", `bounced by the relay's operator (destination ${destination.name})`);
    const taken = this.destinations.get(destination.key)?.takeQueued() ?? [];
    this.settledAt(destination.key, taken);
    for (const work of taken) this.bounceWork(work, r);
    const count = taken.reduce((n, w) => n + w.claims.length, 0);
    return count + await this.bounceInQueue({ domains: destination.domains }, r);
  }

  /**
   * Hold every pending recipient of the destination's domains until released
   * (QueueControl.hold), and take back what the destination had waiting for
   * a connection, so that none of it goes. Returns how many were held.
   */
  async holdDestination(destination: Extract<ResolvedDestination, { found: true }>): Promise<number> {
    const held = await this.deps.store.control.hold({ domains: destination.domains });
    const taken = this.destinations.get(destination.key)?.takeQueued() ?? [];
    this.settledAt(destination.key, taken);
    this.hold(taken, this.deps.clock.now());
    return held;
  }

  /**
   * Bounce a message's recipients in the queue (held ones too), or one of
   * them, as a destination's bounce does; those being sent now finish their
   * attempt. Returns how many.
   */
  bounceRecipients(at: Extract<RecipientSelector, { messageId: string }>): Promise<number> {
    return this.bounceInQueue(at, reply(554, "5.0.0", "bounced by the relay's operator"));
  }

  /** Lease what `at` selects in the queue, batch by batch, and record each as bounced with `r`. */
  private async bounceInQueue(at: RecipientSelector, r: Reply): Promise<number> {
    let count = 0;
    for (;;) {
      const claims = await this.deps.store.claimForBounce(at, CLAIM_BATCH, this.leaseMs);
      this.count(claims, 1);
      count += claims.length;
      const byMessage = new Map<string, Claim[]>();
      for (const claim of claims) byMessage.set(claim.messageId, [...(byMessage.get(claim.messageId) ?? []), claim]);
      for (const [messageId, mine] of byMessage) {
        this.bounceWork({ messageId, mailFrom: mine[0]!.mailFrom, claims: mine }, r);
      }
      if (claims.length < CLAIM_BATCH) return count;
    }
  }

  /** The work's recipients bounce with the operator's reply `r`, no attempt counted. */
  private bounceWork(work: Work, r: Reply): void {
    const results = work.claims.map((c): RecipientResult => ({
      address: c.address,
      reply: r,
      disposition: "bounced",
      category: "other",
      attempted: false,
    }));
    this.report(work, results, this.deps.retry.schedule);
  }

  /**
   * The shaping rules changed: each destination takes its limits under them.
   * One whose domain the rules now send to a destination of another key gives
   * its queued work back, due now, to be routed again.
   */
  reshape(): void {
    for (const [key, destination] of this.destinations) {
      const info = this.book.entry(key)?.info;
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
      const moved = destination.takeQueued();
      this.settledAt(key, moved);
      this.hold(moved, this.deps.clock.now());
    }
  }

  /** Give work back to the queue untried, due at `until`. */
  private hold(works: readonly Work[], until: number): void {
    const claims = works.flatMap((w) => w.claims);
    const ids = claims.map((c) => c.recipientId);
    if (ids.length === 0) return;
    void this.deps.store
      .hold(ids, until)
      .catch((error) =>
        this.deps.log("error", "giving recipients back to the queue failed; they are due when their leases run out", {
          count: ids.length,
          error: String(error),
        })
      )
      .finally(() => {
        this.count(claims, -1);
        this.wake();
      });
  }

  /** The destination at `key` no longer holds this work. */
  private settledAt(key: string, works: readonly Work[]): void {
    const count = works.reduce((n, w) => n + w.claims.length, 0);
    const left = (this.inFlightAt.get(key) ?? 0) - count;
    if (left > 0) this.inFlightAt.set(key, left);
    else this.inFlightAt.delete(key);
  }

  /** Stop claiming; give in-flight deliveries `graceMs`, then close them; release every lease. */
  async stop(graceMs: number): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
    await this.sweeping;
    for (const destination of this.destinations.values()) {
      for (const work of destination.stop()) this.count(work.claims, -1);
    }
    for (const steering of this.steerings.values()) steering.stop();
    await this.drain(graceMs);
    if (this.inFlight > 0) {
      for (const destination of this.destinations.values()) destination.closeAll();
      await this.drain(CLOSED_SETTLE_MS);
    }
    await this.deps.store.releaseLeases();
  }

  /** Claims leased (+1) or settled (-1): the in-flight counts, in all and of the bulk lane. */
  private count(claims: readonly Claim[], sign: 1 | -1): void {
    this.inFlight += sign * claims.length;
    this.inFlightBulk += sign * claims.filter((c) => c.lane === "bulk").length;
  }

  /** Wait up to `ms` for in-flight deliveries to settle: each settled outcome wakes us. */
  private async drain(ms: number): Promise<void> {
    const deadline = this.deps.clock.now() + ms;
    while (this.inFlight > 0 && this.deps.clock.now() < deadline) await this.sleep(deadline - this.deps.clock.now());
  }

  private async run(): Promise<void> {
    let ticks = 0;
    while (this.running) {
      const free = this.maxInFlight - this.inFlight;
      const bulkFree = this.maxBulkInFlight - this.inFlightBulk;
      let claimed = 0;
      if (free > 0) {
        try {
          const claims = await this.deps.store.claimDue(
            Math.min(free, CLAIM_BATCH),
            this.leaseMs,
            Math.max(0, bulkFree),
          );
          claimed = claims.length;
          this.count(claims, 1);
          if (claimed > 0) await this.dispatch(claims);
        } catch (error) {
          this.deps.log("error", "claiming due recipients failed", { error: String(error) });
        }
      }
      if (++ticks % 100 === 0) this.forgetIdleDestinations();
      this.maybeSweepDsns();
      // At the in-flight limit only a settled outcome (which wakes us) makes room.
      if (free <= 0) await this.sleep(IDLE_POLL_MS);
      // With no room for bulk, a bulk recipient due now is no reason to wake.
      else if (claimed === 0) await this.sleep(await this.idleDelay(bulkFree > 0 ? lanes : ["transactional"]));
    }
  }

  /**
   * Route a batch of claims. Domains are planned in parallel; when every plan
   * is there within PLAN_WAIT_MS the batch goes out together (so domains that
   * share an MX site share a transaction), otherwise each domain goes out as
   * soon as its own plan is known: a slow MTA-STS host holds up only its domain.
   */
  private async dispatch(claims: readonly Claim[]): Promise<void> {
    const routes = new Map(claims.map((c) => [routeKey(c), { domain: c.domain, rule: tlsRule(c) }]));
    const planned = [...routes].map(async ([key, { domain, rule }]) =>
      [key, await this.planFor(domain, rule)] as const
    );
    let timer: unknown;
    const waited = new Promise<undefined>((
      resolve,
    ) => (timer = this.deps.clock.setTimeout(() => resolve(undefined), PLAN_WAIT_MS)));
    const all = await Promise.race([Promise.all(planned), waited]);
    this.deps.clock.clearTimeout(timer);
    if (all) return this.enqueue(claims, new Map(all));
    for (const plan of planned) {
      void plan.then(([key, p]) => this.enqueue(claims.filter((c) => routeKey(c) === key), new Map([[key, p]])));
    }
  }

  private planFor(domain: string, rule: TlsRule): Promise<Plan> {
    return this.deps.plan(domain, rule).catch((error): Plan => {
      this.deps.log("error", "routing failed", { domain, error: String(error) });
      const r = reply(451, "4.4.3", "routing failed locally");
      return {
        kind: "defer",
        results: (addresses) => addresses.map((address) => ({ address, reply: r, ...classifyTransportError("dns") })),
        retry: this.deps.retry.schedule,
      };
    });
  }

  private enqueue(claims: readonly Claim[], plans: ReadonlyMap<string, Plan>): void {
    // One work item per (message, destination): domains that share an MX site share the transaction.
    // A VERP return path or a per-recipient copy differs per recipient: one transaction per recipient.
    const works = new Map<string, { work: Work & { tlsReport: Map<string, ReportPolicy> }; plan: Plan }>();
    for (const claim of claims) {
      const plan = plans.get(routeKey(claim))!;
      const alone = claim.returnPathDomain !== undefined || this.deps.perRecipientCopy?.applies(claim.lane) === true;
      const key = `${claim.messageId}\0${plan.kind === "destination" ? plan.key : `${plan.kind}:${claim.domain}`}${
        alone ? `\0${claim.recipientId}` : ""
      }`;
      let entry = works.get(key);
      if (!entry) {
        const work = {
          messageId: claim.messageId,
          mailFrom: claim.mailFrom,
          claims: [],
          tlsReport: new Map<string, ReportPolicy>(),
        };
        works.set(key, entry = { work, plan });
      }
      entry.work.claims.push(claim);
      if (plan.kind === "destination" && plan.tlsReport) entry.work.tlsReport.set(claim.domain, plan.tlsReport);
    }
    const now = this.deps.clock.now();
    for (const { work, plan } of works.values()) {
      if (plan.kind !== "destination") {
        this.report(work, plan.results(work.claims.map((c) => c.address)), plan.retry);
        continue;
      }
      for (const claim of work.claims) this.book.note(plan, claim.domain);
      const suspension = this.book.suspension(plan.key, now);
      if (suspension) {
        this.hold([work], suspension.until);
        continue;
      }
      this.inFlightAt.set(plan.key, (this.inFlightAt.get(plan.key) ?? 0) + work.claims.length);
      const destination = this.destination(plan);
      const most = Math.min(
        plan.recipientsPerTransaction ?? Infinity,
        this.steerings.get(plan.key)!.recipientsPerTransaction,
      );
      for (const part of transactions(work, most)) destination.enqueue(part);
    }
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
          void this.recorder.postpone(work, at, { ...echoOf(work), destination: plan.name });
        },
        loadPayload: async (work) => {
          const message = await this.deps.store.loadMessage(work.messageId);
          if (!message) return undefined;
          return {
            messageId: message.id,
            mailFrom: returnPath(work, this.deps.verpKey) ?? message.mailFrom,
            recipients: work.claims.map((c) => c.address),
            body: await this.bodyFor(work, message.body),
            requireTls: work.claims[0]?.tlsTag === "requiretls",
            // Passed on to a next hop that advertises DSN (RFC 3461 5.2).
            dsn: {
              ret: message.dsnRet ?? undefined,
              envid: message.dsnEnvid ?? undefined,
              recipients: work.claims.map((c) => ({ notify: c.dsnNotify, orcpt: c.dsnOrcpt })),
            },
          };
        },
        report: (work, results) => {
          this.settledAt(key, [work]);
          this.noteReply(key, results);
          this.report(work, steering.observe(results), retry, plan.name);
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

  /** The stored body, or the recipient's own copy when perRecipientCopy applies to the work's one recipient. */
  private async bodyFor(work: Work, body: Uint8Array): Promise<Uint8Array> {
    const copies = this.deps.perRecipientCopy;
    const [claim, ...others] = work.claims;
    if (!copies || !claim || others.length > 0 || !copies.applies(claim.lane)) return body;
    return await copies.copyFor(body, claim.recipientId);
  }

  /** A destination's own pacer, or the one it shares; none: no limit. */
  private pacer({ spacing, shared }: Pacing = { spacing: 0 }): Pacer {
    if (shared === undefined) return new Pacer(spacing);
    let pacer = this.sharedPacers.get(shared);
    if (!pacer) this.sharedPacers.set(shared, pacer = new Pacer(spacing));
    pacer.setSpacing(spacing);
    return pacer;
  }

  /** An operator's suspension or resumption, in the event log as automation's are. */
  private operatorChanged(key: string, change: DestinationChange): void {
    this.deps.steering?.changed(change, key, this.book.entry(key)?.info.shaping()?.provider);
  }

  /** The pacer for `pacing` of a destination that had `current`: that one still, when both are its own. */
  private repace(current: Pacer, pacing: Pacing): Pacer {
    const wasShared = [...this.sharedPacers.values()].includes(current);
    if (pacing.shared !== undefined || wasShared) return this.pacer(pacing);
    current.setSpacing(pacing.spacing);
    return current;
  }

  /** The destination's last reply, for the queue summary. */
  private noteReply(key: string, results: readonly RecipientResult[]): void {
    const entry = this.book.entry(key);
    const last = results.findLast((r) => r.attempted !== false);
    if (entry && last) entry.lastReply = { text: replyText(last.reply), at: this.deps.clock.now() };
  }

  /** `destination`: the name of the destination the work went to (planner.ts, destinationName), for the event log. */
  private report(work: Work, results: RecipientResult[], retry: readonly number[], destination?: string): void {
    const echo = destination === undefined ? echoOf(work) : { ...echoOf(work), destination };
    void this.recorder.report(work, results, retry, echo);
  }

  /**
   * On a timer, in the background: the sweep never holds up claiming, and
   * only one runs at a time. What it enqueues is due now, so it wakes the loop.
   */
  private maybeSweepDsns(): void {
    const now = this.deps.clock.now();
    if (this.sweeping || now < this.nextSweepAt) return;
    this.nextSweepAt = now + this.dsnSweepMs;
    this.sweeping = this.dsns
      .sweep()
      .then((enqueued) => {
        if (enqueued > 0) this.wake();
      })
      .catch((error) => this.deps.log("error", "sending DSNs failed; they stay pending", { error: String(error) }))
      .finally(() => {
        this.sweeping = undefined;
      });
  }

  private forgetIdleDestinations(): void {
    const now = this.deps.clock.now();
    for (const [key, destination] of this.destinations) {
      const steering = this.steerings.get(key);
      if (!destination.idle || destination.suspendedUntil > now || steering?.idle === false) continue;
      steering?.stop();
      this.destinations.delete(key);
      this.steerings.delete(key);
    }
  }

  private async idleDelay(of: readonly Lane[]): Promise<number> {
    const due = await this.deps.store.nextDueAt(of).catch((error) => {
      this.deps.log("error", "finding the next due time failed; polling instead", { error: String(error) });
      return undefined;
    });
    if (due === undefined) return IDLE_POLL_MS;
    return Math.min(IDLE_POLL_MS, Math.max(0, due - this.deps.clock.now()));
  }

  /** Sleep until `ms` have passed or wake() is called, whichever comes first. */
  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    const clock = this.deps.clock;
    return new Promise((resolve) => {
      const done = () => {
        clock.clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = clock.setTimeout(done, ms);
      this.wakeUp = done;
    });
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
function automated(state: AutomationState | undefined): Pick<DestinationState, "automation"> {
  return state === undefined || state.kind === "normal" ? {} : { automation: state };
}

/** What every event about a message repeats of it. */
function echoOf(work: Work): Record<string, unknown> {
  const first = work.claims[0];
  return {
    tags: first?.tags,
    metadata: first?.metadata,
    priority: first?.lane,
    ...(first?.tlsTag === "requiretls" ? { require_tls: true } : {}),
  };
}

const tlsRule = (claim: Claim): TlsRule => tlsRuleFor(claim.tlsTag, claim.mailFrom);

/** Claims with the same domain and TLS rule share a plan. */
const routeKey = (claim: Claim): string => `${claim.domain}\0${tlsRule(claim)}`;

/**
 * The envelope sender delivery uses instead of the stored one: a VERP address
 * at RELAY_BOUNCE_DOMAIN (decided at ingress, see ingress/return-path.ts) for a work
 * item of one recipient; the stored mail_from stays the submitter's.
 */
function returnPath(work: Work, key: VerpKey): string | undefined {
  const [claim, ...others] = work.claims;
  if (claim?.returnPathDomain === undefined || others.length > 0) return undefined;
  return verpAddress(work.messageId, claim.recipientId, claim.returnPathDomain, key);
}
