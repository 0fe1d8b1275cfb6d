import type { Clock } from "../core/clock.ts";
import { type Reply, reply } from "../core/reply.ts";
import type { PendingDsn, SettledDsn } from "../queue/records.ts";
import type { QueueStore } from "../queue/store.ts";
import { dsnMessage, type ReportedRecipient } from "./bounce.ts";

export interface DsnSweeperDeps {
  readonly store: QueueStore;
  readonly clock: Clock;
  /** Our host name: Reporting-MTA and the DSN's Message-ID domain. */
  readonly hostname: string;
  /** RELAY_MAX_QUEUE_TIME, for a delay warning's Will-Retry-Until. */
  readonly maxQueueTime: number;
  readonly log: (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
  /** Messages handled per sweep. */
  readonly batch?: number;
}

/** "550 5.1.1 no such user" back into a reply (recipients keep the last reply as text). */
export function parseReplyText(text: string | undefined): Reply {
  const match = /^([2-5]\d\d)(?:\s+([245]\.\d{1,3}\.\d{1,3})(?=\s|$))?\s*(.*)$/s.exec(text ?? "");
  if (!match) return reply(451, "4.0.0", text || "no reply recorded");
  return reply(Number(match[1]), match[2], match[3] ?? "");
}

/**
 * Sends the DSNs recipients owe (RFC 3461/3464). The OutcomeRecorder only
 * marks a recipient (failure, delay warning, success) in the transaction that
 * changes its state; this sweep builds ONE report per message for every
 * marked recipient, once none of the message's recipients is still in flight,
 * and enqueues it while clearing the marks in the same transaction. So two
 * recipients that fail at different destinations share one DSN, and a crash
 * can neither send a DSN twice nor lose one.
 */
export class DsnSweeper {
  private readonly batch: number;

  constructor(private readonly deps: DsnSweeperDeps) {
    this.batch = deps.batch ?? 200;
  }

  /** One pass; returns how many DSNs were enqueued. Repeats while full batches come back. */
  async sweep(): Promise<number> {
    let enqueued = 0;
    for (;;) {
      const pending = await this.deps.store.dsns.pending(this.batch);
      if (pending.length === 0) return enqueued;
      const settled = pending.map((p) => this.settle(p));
      const ids = await this.deps.store.dsns.settle(settled);
      enqueued += ids.length;
      if (pending.length < this.batch) return enqueued;
    }
  }

  private settle(p: PendingDsn): SettledDsn {
    const recipients = p.recipients.map((r) => ({ recipientId: r.recipientId, address: r.address, kind: r.kind }));
    const now = this.deps.clock.now();
    const reported = p.recipients.map(
      (r): ReportedRecipient => ({
        address: r.address,
        kind: r.kind,
        reply: parseReplyText(r.lastReply),
        expired: r.kind === "failure" && r.state === "expired",
        orcpt: r.dsnOrcpt,
        remoteMta: r.lastMta,
        lastAttemptAt: r.updatedAt,
        willRetryUntil: r.kind === "delay" ? p.createdAt + this.deps.maxQueueTime : undefined,
      }),
    );
    try {
      // Undefined for the null sender (marks are never set for it, but never bounce a bounce).
      const dsn = dsnMessage(p, reported, this.deps.hostname, now);
      return { messageId: p.messageId, dsn, recipients };
    } catch (error) {
      // A report that cannot be built never will be: clear its marks rather than retry forever.
      this.deps.log("error", "building a DSN failed; its recipients are not reported", {
        message: p.messageId,
        error: String(error),
      });
      return { messageId: p.messageId, recipients };
    }
  }
}
