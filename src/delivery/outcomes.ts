import type { Clock } from "../core/clock.ts";
import { replyText } from "../core/reply.ts";
import { GroupCommit } from "../queue/group-commit.ts";
import type { Claim, NewMessage, Outcome, QueueStore } from "../queue/store.ts";
import { bounceMessage, type FailedRecipient } from "./bounce.ts";
import { nextRetry, type RetryPolicy } from "./retry.ts";
import type { RecipientResult, Work } from "./work.ts";

export interface OutcomeRecorderDeps {
  readonly store: QueueStore;
  readonly clock: Clock;
  readonly retry: RetryPolicy;
  readonly hostname: string;
  /** Told once the outcomes of `count` recipients are on disk. */
  readonly settled: (count: number) => void;
  readonly log: (level: "error", message: string, fields?: Record<string, unknown>) => void;
}

interface Reported {
  readonly outcomes: Outcome[];
  readonly followUps: NewMessage[];
}

/**
 * Turns attempt results into recipient states (delivered, deferred with the
 * next retry, bounced, expired), the events that go with them and the DSN for
 * the failures; many reports share one transaction (group commit).
 */
export class OutcomeRecorder {
  private readonly commits: GroupCommit<Reported>;

  constructor(private readonly deps: OutcomeRecorderDeps) {
    this.commits = new GroupCommit((items) =>
      deps.store.record(items.flatMap((i) => i.outcomes), items.flatMap((i) => i.followUps)).then(() => undefined),
    );
  }

  report(work: Work, results: readonly RecipientResult[], echo: Record<string, unknown> = {}): Promise<void> {
    return this.build(work, results, echo)
      .then((reported) => this.commits.submit(reported))
      .catch((error) => {
        // The leases run out and the recipients fall due again: nothing is lost.
        this.deps.log("error", "recording delivery outcomes failed", { message: work.messageId, error: String(error) });
      })
      .finally(() => this.deps.settled(work.claims.length));
  }

  private async build(work: Work, results: readonly RecipientResult[], echo: Record<string, unknown>): Promise<Reported> {
    const now = this.deps.clock.now();
    const byAddress = new Map(results.map((r) => [r.address, r]));
    const outcomes: Outcome[] = [];
    const failed: FailedRecipient[] = [];
    for (const claim of work.claims) {
      const result = byAddress.get(claim.address);
      if (!result) continue;
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
    if (failed.length === 0 || work.mailFrom === "") return { outcomes, followUps: [] };
    const message = await this.deps.store.loadMessage(work.messageId);
    const dsn = message ? bounceMessage(message, failed, this.deps.hostname, now) : undefined;
    return { outcomes, followUps: dsn ? [dsn] : [] };
  }

  private outcomeOf(claim: Claim, result: RecipientResult, now: number, echo: Record<string, unknown>): Outcome {
    const text = replyText(result.reply);
    const base = { recipientId: claim.recipientId, messageId: claim.messageId, address: claim.address, reply: text };
    const attempt = claim.attempts + (result.attempted === false ? 0 : 1);
    const event = { reply: text, category: result.category, attempt, mx: result.remoteMta, tls: result.tls, ...echo };
    if (result.disposition === "delivered") {
      const followingEvents = result.complaint ? [{ type: "complained" as const, data: { feedback_type: "abuse", ...echo } }] : [];
      return { ...base, state: "delivered", event, followingEvents };
    }
    if (result.disposition === "bounced") return { ...base, state: "bounced", event: { ...event, bounce_type: "hard" } };
    const decision = nextRetry(this.deps.retry, Math.max(attempt, 1), claim.messageCreatedAt, now);
    if (decision.kind === "expire") {
      return { ...base, state: "expired", event: { ...event, category: "message-expired", bounce_type: "soft" } };
    }
    return {
      ...base,
      state: "deferred",
      nextAttemptAt: decision.at,
      counted: result.attempted !== false,
      event: { ...event, next_attempt_at: new Date(decision.at).toISOString() },
    };
  }
}
