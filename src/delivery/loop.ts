import type { Clock } from "../core/clock.ts";
import { replyText } from "../core/reply.ts";
import type { Claim, Outcome, QueueStore } from "../queue/store.ts";
import type { SmtpClientSession } from "../smtp/client/index.ts";
import { attemptDelivery, type AttemptDeps, type RecipientResult } from "./attempt.ts";
import { bounceMessage, type FailedRecipient } from "./bounce.ts";
import { nextRetry, type RetryPolicy } from "./retry.ts";
import type { RouteResult } from "./route.ts";

export interface DeliveryLoopDeps {
  readonly store: QueueStore;
  readonly clock: Clock;
  readonly route: (domain: string) => Promise<RouteResult>;
  readonly retry: RetryPolicy;
  readonly hostname: string;
  readonly sourceIp?: string;
  readonly timeouts?: AttemptDeps["timeouts"];
  /** Deliveries (one message to one domain) running at once. */
  readonly concurrency?: number;
  /** How long a claim is ours; longer than the slowest possible attempt. */
  readonly leaseMs?: number;
  readonly log: (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
}

/** The recipients of one message at one domain: delivered in one SMTP transaction. */
interface Group {
  readonly messageId: string;
  readonly domain: string;
  readonly claims: Claim[];
}

const IDLE_POLL_MS = 1000;

/**
 * The scheduler: lease due recipients, deliver them grouped per message and
 * domain, record each outcome with its event, and sleep until the next due
 * time or until woken by an enqueue.
 */
export class DeliveryLoop {
  private running = false;
  private readonly active = new Set<Promise<void>>();
  private readonly openSessions = new Set<SmtpClientSession>();
  private wakeUp: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;
  private readonly concurrency: number;
  private readonly leaseMs: number;

  constructor(private readonly deps: DeliveryLoopDeps) {
    this.concurrency = deps.concurrency ?? 50;
    this.leaseMs = deps.leaseMs ?? 20 * 60_000;
  }

  async start(): Promise<void> {
    const released = await this.deps.store.releaseLeases();
    if (released > 0) this.deps.log("info", "resuming recipients leased before a restart", { count: released });
    this.running = true;
    this.loopDone = this.run();
  }

  wake(): void {
    this.wakeUp?.();
  }

  /** Stop claiming; give in-flight deliveries `graceMs` to finish, then close them and release their leases. */
  async stop(graceMs: number): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
    const all = Promise.all(this.active);
    const timedOut = await Promise.race([all.then(() => false), sleep(graceMs).then(() => true)]);
    if (timedOut) {
      for (const session of this.openSessions) session.close();
      await all;
    }
    await this.deps.store.releaseLeases();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const free = this.concurrency - this.active.size;
      let claimed = 0;
      if (free > 0) {
        try {
          const claims = await this.deps.store.claimDue(free * 10, this.leaseMs);
          claimed = claims.length;
          for (const group of groupClaims(claims)) this.track(this.deliver(group));
        } catch (error) {
          this.deps.log("error", "claiming due recipients failed", { error: String(error) });
        }
      }
      if (claimed === 0 || free <= 0) await this.sleep(await this.idleDelay());
    }
  }

  private async idleDelay(): Promise<number> {
    const due = await this.deps.store.nextDueAt().catch(() => undefined);
    if (due === undefined) return IDLE_POLL_MS;
    return Math.min(IDLE_POLL_MS, Math.max(0, due - this.deps.clock.now()));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private track(task: Promise<void>): void {
    this.active.add(task);
    void task.finally(() => {
      this.active.delete(task);
      this.wake();
    });
  }

  private async deliver(group: Group): Promise<void> {
    const { store, clock } = this.deps;
    try {
      const message = await store.loadMessage(group.messageId);
      if (!message) return;
      const route = await this.deps.route(group.domain);
      const results = await attemptDelivery(
        route,
        {
          mailFrom: message.mailFrom,
          recipients: group.claims.map((c) => c.address),
          message: message.body,
        },
        { heloName: this.deps.hostname, sourceIp: this.deps.sourceIp, timeouts: this.deps.timeouts, openSessions: this.openSessions },
      );
      const byAddress = new Map(results.map((r) => [r.address, r]));
      const now = clock.now();
      const outcomes: Outcome[] = [];
      const failed: FailedRecipient[] = [];
      // The submitter's tags and metadata come back in every event about the message.
      const echo = { tags: message.tags ?? undefined, metadata: message.metadata ?? undefined };
      for (const claim of group.claims) {
        const result = byAddress.get(claim.address)!;
        const outcome = this.outcomeOf(claim, result, now, echo);
        outcomes.push(outcome);
        if (outcome.state === "bounced" || outcome.state === "expired") {
          failed.push({
            address: claim.address,
            reply: result.reply,
            expired: outcome.state === "expired",
            notify: claim.dsnNotify,
            orcpt: claim.dsnOrcpt,
            remoteMta: result.remoteMta,
          });
        }
      }
      const dsn = failed.length > 0 ? bounceMessage(message, failed, this.deps.hostname, now) : undefined;
      await store.record(outcomes, dsn ? [dsn] : []);
      if (dsn) this.wake();
    } catch (error) {
      // The leases run out and the recipients fall due again: nothing is lost.
      this.deps.log("error", "delivery failed unexpectedly", { message: group.messageId, domain: group.domain, error: String(error) });
    }
  }

  private outcomeOf(claim: Claim, result: RecipientResult, now: number, echo: Record<string, unknown>): Outcome {
    const base = {
      recipientId: claim.recipientId,
      messageId: claim.messageId,
      address: claim.address,
      reply: replyText(result.reply),
    };
    const event = {
      reply: replyText(result.reply),
      category: result.category,
      attempt: claim.attempts + 1,
      mx: result.remoteMta,
      tls: result.tls,
      ...echo,
    };
    if (result.disposition === "delivered") return { ...base, state: "delivered", event };
    if (result.disposition === "bounced") return { ...base, state: "bounced", event: { ...event, bounce_type: "hard" } };
    const decision = nextRetry(this.deps.retry, claim.attempts + 1, claim.messageCreatedAt, now);
    if (decision.kind === "expire") {
      return { ...base, state: "expired", event: { ...event, category: "message-expired", bounce_type: "soft" } };
    }
    return {
      ...base,
      state: "deferred",
      nextAttemptAt: decision.at,
      event: { ...event, next_attempt_at: new Date(decision.at).toISOString() },
    };
  }
}

function groupClaims(claims: readonly Claim[]): Group[] {
  const groups = new Map<string, Group>();
  for (const claim of claims) {
    const key = `${claim.messageId}\0${claim.domain}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { messageId: claim.messageId, domain: claim.domain, claims: [] }));
    group.claims.push(claim);
  }
  return [...groups.values()];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
