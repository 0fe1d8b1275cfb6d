import type { TimerClock } from "../core/clock.ts";
import { type Lane, lanes } from "../core/lane.ts";
import { reply } from "../core/reply.ts";
import type { Claim, Outcome } from "../queue/records.ts";
import type { DeliveryFence } from "./fence.ts";
import type { SettingsStore } from "../queue/settings.ts";
import type { QueueStore } from "../queue/store.ts";
import { classifyTransportError } from "./classify.ts";
import { DestinationBook } from "./destination-book.ts";
import { DestinationRegistry } from "./destination-registry.ts";
import { DsnSweeper } from "./dsn-sweeper.ts";
import type { SteeringDeps } from "./steering.ts";
import type { DeliveryMeter } from "./meter.ts";
import { OperatorCommands } from "./operator-commands.ts";
import { OutcomeRecorder, type OutcomeRecorderDeps } from "./outcomes.ts";
import { loadPayload, type PerRecipientCopy } from "./payload.ts";
import type { Plan } from "./plan.ts";
import type { VerpKey } from "../core/verp.ts";
import type { RetryPolicy } from "./retry.ts";
import type { ReportPolicy } from "./tls-report/policy.ts";
import type { TlsTally } from "./tls-report/tally.ts";
import { type TlsRule, tlsRuleFor } from "./tls-rule.ts";
import type { RecipientResult, Work } from "./work.ts";

type Log = (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;

export interface SchedulerDeps {
  readonly store: QueueStore;
  /** Under replicated durability only. */
  readonly fence?: DeliveryFence;
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
  /** A copy of its own for each recipient in the lanes it applies to (payload.ts); absent: none. */
  readonly perRecipientCopy?: PerRecipientCopy;
  /** Metrics: connections, attempts and commits as they happen; absent: not measured. */
  readonly meter?: DeliveryMeter;
  /** Deliveries written down ahead of their commit (src/queue/delivery-journal.ts); absent: none. */
  readonly journal?: OutcomeRecorderDeps["journal"];
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
  private readonly book: DestinationBook;
  private readonly destinations: DestinationRegistry;
  private readonly recorder: OutcomeRecorder;
  private readonly maxInFlight: number;
  private readonly maxBulkInFlight: number;
  private readonly leaseMs: number;
  private readonly dsns: DsnSweeper;
  private readonly dsnSweepMs: number;
  private nextSweepAt = 0;
  private sweeping: Promise<void> | undefined;
  /** The operator's commands on destinations (GET /v1/queue and its actions, bouncing a message's recipients). */
  readonly operator: OperatorCommands;

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
      retryFullForMs: this.leaseMs / 2,
      maxQueueTime: deps.retry.maxQueueTime,
      greylistRetry: deps.greylistRetry,
      delayWarningAfter: deps.delayWarningAfter ?? DEFAULT_DELAY_WARNING_AFTER,
      log: deps.log,
      settled: (claims) => {
        this.count(claims, -1);
        this.wake();
      },
      ...(deps.meter ? { meter: deps.meter } : {}),
      ...(deps.fence ? { beforeRecord: (outcomes: readonly Outcome[]) => deps.fence!.finished(outcomes) } : {}),
      ...(deps.journal ? { journal: deps.journal } : {}),
    });
    this.destinations = new DestinationRegistry({
      clock: deps.clock,
      book: this.book,
      log: deps.log,
      ...(deps.tlsTally ? { tlsTally: deps.tlsTally } : {}),
      ...(deps.steering ? { steering: deps.steering } : {}),
      ...(deps.meter ? { meter: deps.meter } : {}),
      loadPayload: (work) => loadPayload(work, deps),
      postpone: (work, at, destination) => void this.recorder.postpone(work, at, { ...echoOf(work), destination }),
      report: (work, results, retry, destination) => this.report(work, results, retry, destination),
    });
    this.operator = new OperatorCommands({
      store: deps.store,
      clock: deps.clock,
      book: this.book,
      live: this.destinations,
      loop: {
        plan: (domain, rule) => this.planFor(domain, rule),
        hold: (works, until) => this.hold(works, until),
        report: (work, results, retry) => this.report(work, results, retry),
        leased: (claims) => this.count(claims, 1),
        wake: () => this.wake(),
      },
      batch: CLAIM_BATCH,
      leaseMs: this.leaseMs,
      retrySchedule: deps.retry.schedule,
      ...(deps.steering ? { changed: deps.steering.changed } : {}),
    });
  }

  async start(): Promise<void> {
    await this.recorder.recoverJournal().then(
      (recovered) => {
        if (recovered > 0) {
          this.deps.log("info", "recorded deliveries acknowledged before a restart", { count: recovered });
        }
      },
      // The journal is kept for the next start; meanwhile its recipients may go again, as without it.
      (error) => this.deps.log("error", "recording the delivery journal failed", { error: String(error) }),
    );
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

  /**
   * The shaping rules changed: each destination takes its limits under them;
   * one whose domain the rules now send elsewhere gives its queued work back,
   * due now, to be routed again.
   */
  reshape(): void {
    this.destinations.reshape((moved) => this.hold(moved, this.deps.clock.now()));
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

  /** Stop claiming; give in-flight deliveries `graceMs`, then close them; release every lease. */
  async stop(graceMs: number): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
    await this.sweeping;
    for (const work of this.destinations.stop()) this.count(work.claims, -1);
    await this.drain(graceMs);
    if (this.inFlight > 0) {
      this.destinations.closeAll();
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
      const fenced = this.deps.fence?.mayDeliver() === false;
      if (free > 0 && !fenced) {
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
      if (++ticks % 100 === 0) this.destinations.forgetIdle();
      this.maybeSweepDsns();
      // At the in-flight limit only a settled outcome (which wakes us) makes room; without its lease the node waits.
      if (free <= 0 || fenced) await this.sleep(IDLE_POLL_MS);
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
      this.destinations.hand(plan, work);
    }
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
