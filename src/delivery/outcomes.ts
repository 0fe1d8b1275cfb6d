import type { TimerClock } from "../core/clock.ts";
import { errorText } from "../core/log.ts";
import { replyText } from "../core/reply.ts";
import { GroupCommit } from "../queue/group-commit.ts";
import type { DeliveryJournal } from "../queue/delivery-journal.ts";
import type { Claim, Outcome, Postponement } from "../queue/records.ts";
import type { QueueStore } from "../queue/store.ts";
import type { DsnKind } from "../queue/schema.ts";
import { isStorageFull } from "../queue/storage-full.ts";
import { wantsDelayReport, wantsFailureReport, wantsSuccessReport } from "./bounce.ts";
import { greylistRetryDelay } from "./greylist.ts";
import type { DeliveryMeter } from "./meter.ts";
import { nextRetry } from "./retry.ts";
import type { RecipientResult, Work } from "./work.ts";

export interface OutcomeRecorderDeps {
  readonly store: QueueStore;
  readonly clock: TimerClock;
  /**
   * How long outcomes the disk had no room for are tried again (every
   * FULL_RETRY_MS): well within the claims' lease, so that no other claim
   * attempts them again meanwhile. Absent: not tried again.
   */
  readonly retryFullForMs?: number;
  /** After this long in the queue a deferred recipient expires (RELAY_MAX_QUEUE_TIME). */
  readonly maxQueueTime: number;
  /** RELAY_GREYLIST_RETRY: the retry after a recipient's first greylisting reply, unless the reply names a wait. */
  readonly greylistRetry: number;
  /** Warn the sender once a recipient has waited this long (RELAY_DELAY_WARNING_AFTER); 0: never. */
  readonly delayWarningAfter: number;
  /** Told once the outcomes of these claims are on disk (or failed to be written: their leases run out). */
  readonly settled: (claims: readonly Claim[]) => void;
  readonly log: (level: "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
  /** Told the size and time of each commit; absent: not measured. */
  readonly meter?: Pick<DeliveryMeter, "committed">;
  /** Told each commit's outcomes before they are recorded (replicated durability's done marks). */
  readonly beforeRecord?: (outcomes: readonly Outcome[]) => Promise<void>;
  /** Where deliveries are written down ahead of their commit; absent: they wait for the commit alone. */
  readonly journal?: Pick<DeliveryJournal, "append" | "recovered" | "forgetRecovered">;
}

/** While the disk is full, how often outcomes that could not be written are tried again. */
export const FULL_RETRY_MS = 2_000;

/**
 * Turns attempt results into recipient states (delivered, deferred with the
 * next retry on the schedule of the destination tried, bounced, expired),
 * the events that go with them and the DSN each one owes its sender, marked
 * on the recipient in the same transaction (the DsnSweeper builds one report
 * per message from the marks); many reports share one transaction (group
 * commit).
 */
export class OutcomeRecorder {
  private readonly commits: GroupCommit<Outcome[]>;
  private readonly postponements: GroupCommit<Postponement[]>;

  constructor(private readonly deps: OutcomeRecorderDeps) {
    const meter = deps.meter;
    this.commits = new GroupCommit(
      async (items) => {
        const outcomes = items.flat();
        await deps.beforeRecord?.(outcomes);
        await deps.store.record(outcomes);
      },
      undefined,
      meter && ((size, ms) => meter.committed("outcomes", size, ms)),
    );
    this.postponements = new GroupCommit(
      (items) => deps.store.postpone(items.flat()),
      undefined,
      meter && ((size, ms) => meter.committed("postponements", size, ms)),
    );
  }

  /** `retry`: the retry schedule of the destination the work went to (the shaping rules' `retry`). */
  report(
    work: Work,
    results: readonly RecipientResult[],
    retry: readonly number[],
    echo: Record<string, unknown> = {},
  ): Promise<void> {
    return Promise.resolve()
      .then(() => {
        const outcomes = this.build(work, results, retry, echo);
        // Only a delivery would be repeated at the destination if its commit never came.
        const written = this.deps.journal?.append(outcomes.filter((o) => o.state === "delivered"));
        return this.record(work, outcomes).finally(written);
      })
      .catch((error) => {
        // The leases run out and the recipients fall due again: nothing is lost.
        this.deps.log("error", "recording delivery outcomes failed", {
          message_id: work.messageId,
          error: errorText(error),
        });
      })
      .finally(() => this.deps.settled(work.claims));
  }

  /**
   * Record the deliveries the journal holds from before a restart whose
   * recipients are still pending (their commit never came); before any lease
   * is released, or they would go out again. Returns how many.
   */
  async recoverJournal(): Promise<number> {
    const journal = this.deps.journal;
    if (!journal) return 0;
    const recovered = journal.recovered();
    const pending = await this.deps.store.pendingAmong(recovered.map((o) => o.recipientId));
    const due = recovered.filter((o) => pending.delete(o.recipientId));
    if (due.length > 0) await this.commits.submit(due);
    journal.forgetRecovered();
    return due.length;
  }

  /**
   * Commit outcomes. A commit the disk had no room for is tried again while
   * retryFullForMs lasts: the attempt was made, and recording it late is
   * better than making it again once the leases run out (a delivered message
   * sent twice). Outcomes need little room, and deliveries free some.
   */
  private async record(work: Work, outcomes: Outcome[]): Promise<void> {
    const { clock, retryFullForMs = 0 } = this.deps;
    const giveUpAt = clock.now() + retryFullForMs;
    for (;;) {
      try {
        return await this.commits.submit(outcomes);
      } catch (error) {
        if (!isStorageFull(error) || clock.now() + FULL_RETRY_MS > giveUpAt) throw error;
        this.deps.log("warn", "recording delivery outcomes failed: the disk is full; trying again", {
          message_id: work.messageId,
          error: errorText(error),
        });
        await new Promise<void>((resolve) => clock.setTimeout(resolve, FULL_RETRY_MS));
      }
    }
  }

  /**
   * Pacing hands work back until its turn: no attempt, no event. A turn past
   * the recipient's deadline is cut to it, and a recipient whose deadline has
   * come expires instead: waiting for a rate is waiting in the queue.
   */
  postpone(work: Work, at: number, echo: Record<string, unknown> = {}): Promise<void> {
    const now = this.deps.clock.now();
    const deadline = (claim: Claim) => claim.messageCreatedAt + this.deps.maxQueueTime;
    const expired = work.claims.filter((claim) => now >= deadline(claim));
    const postponements = work.claims
      .filter((claim) => now < deadline(claim))
      .map((claim) => ({ recipientId: claim.recipientId, at: Math.min(at, deadline(claim)) }));
    return Promise.all([
      postponements.length > 0 ? this.postponements.submit(postponements) : undefined,
      expired.length > 0
        ? this.commits.submit(expired.map((claim) => this.expiredWaiting(claim, work, echo)))
        : undefined,
    ])
      .then(() => undefined)
      .catch((error) => {
        // The leases run out and the recipients fall due again: nothing is lost.
        this.deps.log("error", "postponing recipients failed", {
          message_id: work.messageId,
          error: errorText(error),
        });
      })
      .finally(() => this.deps.settled(work.claims));
  }

  private expiredWaiting(claim: Claim, work: Work, echo: Record<string, unknown>): Outcome {
    const reply = "451 4.4.7 message expired while waiting for its turn at a rate-limited destination";
    const dsn = claim.mailFrom !== "" && wantsFailureReport(claim.dsnNotify) ? { dsn: "failure" as const } : {};
    return {
      recipientId: claim.recipientId,
      messageId: work.messageId,
      address: claim.address,
      reply,
      state: "expired",
      counted: false,
      event: {
        reply,
        category: "message-expired",
        bounce_type: "soft",
        attempt: claim.attempts,
        delay_ms: this.deps.clock.now() - claim.messageCreatedAt,
        ...echo,
      },
      ...dsn,
    };
  }

  private build(
    work: Work,
    results: readonly RecipientResult[],
    retry: readonly number[],
    echo: Record<string, unknown>,
  ): Outcome[] {
    const now = this.deps.clock.now();
    const byAddress = new Map(results.map((r) => [r.address, r]));
    const outcomes: Outcome[] = [];
    for (const claim of work.claims) {
      const result = byAddress.get(claim.address);
      if (!result) continue;
      const outcome = this.outcomeOf(claim, result, retry, now, echo);
      const dsn = this.dsnOf(claim, result, outcome, now);
      outcomes.push({ ...outcome, remoteMta: result.remoteMta, ...(dsn ? { dsn } : {}) });
    }
    return outcomes;
  }

  /** The DSN an outcome owes the sender (RFC 3461 NOTIFY); never one to the null sender. */
  private dsnOf(claim: Claim, result: RecipientResult, outcome: Outcome, now: number): DsnKind | undefined {
    if (claim.mailFrom === "") return undefined;
    switch (outcome.state) {
      case "bounced":
      case "expired":
        return wantsFailureReport(claim.dsnNotify) ? "failure" : undefined;
      case "delivered":
        // A next hop that took NOTIFY (it advertised DSN) reports success itself (RFC 3461 5.2.2).
        return wantsSuccessReport(claim.dsnNotify) && !result.dsnPassedOn ? "success" : undefined;
      case "deferred": {
        const after = this.deps.delayWarningAfter;
        const waited = now - claim.messageCreatedAt;
        const due = after > 0 && waited >= after && claim.delayNotifiedAt === undefined;
        return due && wantsDelayReport(claim.dsnNotify) ? "delay" : undefined;
      }
    }
  }

  private outcomeOf(
    claim: Claim,
    result: RecipientResult,
    retry: readonly number[],
    now: number,
    echo: Record<string, unknown>,
  ): Outcome {
    const text = replyText(result.reply);
    const counted = result.attempted !== false;
    const base = {
      recipientId: claim.recipientId,
      messageId: claim.messageId,
      address: claim.address,
      reply: text,
      counted,
    };
    const attempt = claim.attempts + (counted ? 1 : 0);
    // What the delivery log reports of an attempt (src/events/delivery-log.ts); Postfix's relay=, delay=, delays=.
    const event = {
      reply: text,
      category: result.category,
      attempt,
      mx: result.remoteMta,
      mx_ip: result.remoteIp,
      source_ip: result.localIp,
      duration_ms: result.durationMs,
      delay_ms: now - claim.messageCreatedAt,
      tls: result.tls,
      ...echo,
    };
    if (result.disposition === "delivered") {
      const followingEvents = result.complaint
        ? [{ type: "complained" as const, data: { feedback_type: "abuse", ...echo } }]
        : [];
      return { ...base, state: "delivered", event, followingEvents };
    }
    if (result.disposition === "bounced") {
      return { ...base, state: "bounced", event: { ...event, bounce_type: "hard" } };
    }
    const greylisted = result.category === "greylisting";
    // Only the first greylisting is retried early: a greylister that defers again follows the schedule.
    const schedule = greylisted && claim.greylistedAt === undefined
      ? [greylistRetryDelay(result.reply, this.deps.greylistRetry)]
      : retry;
    const policy = { schedule, maxQueueTime: this.deps.maxQueueTime };
    const decision = nextRetry(policy, Math.max(attempt, 1), claim.messageCreatedAt, now);
    if (decision.kind === "expire") {
      return { ...base, state: "expired", event: { ...event, category: "message-expired", bounce_type: "soft" } };
    }
    // A destination that paused says when it goes on; never past the recipient's deadline.
    const at = result.retryAt === undefined
      ? decision.at
      : Math.min(result.retryAt, claim.messageCreatedAt + this.deps.maxQueueTime);
    return {
      ...base,
      state: "deferred",
      nextAttemptAt: at,
      ...(greylisted ? { greylisted } : {}),
      event: { ...event, next_attempt_at: new Date(at).toISOString() },
    };
  }
}
