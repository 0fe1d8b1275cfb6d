import type { Clock } from "../core/clock.ts";
import type { Database } from "./database.ts";
import type { DomainBacklog, InQueueCount } from "./records.ts";
import { chunks, IN_QUEUE, marks, PENDING, ROWS_PER_STATEMENT } from "./queue-states.ts";

/**
 * The queue by recipient domain: the backlog the queue summary shows, the
 * counts metrics report, and making a destination's deferred recipients due
 * now (an operator's resume or retry).
 */
export class QueueByDomain {
  constructor(private readonly database: Database, private readonly clock: Clock) {}

  /**
   * The backlog of each recipient domain, from the index recipients_in_queue:
   * how many are queued, deferred (those in flight among them) and held, each count
   * at most `cap`, and the oldest message. For `domains`, or for the first
   * `limit` domains with recipients in the queue, in name order (each next one
   * found by a seek in the index, not a scan).
   */
  async backlog(
    which: { readonly domains: readonly string[] } | { readonly limit: number },
    cap: number,
  ): Promise<DomainBacklog[]> {
    if ("domains" in which && which.domains.length > ROWS_PER_STATEMENT) {
      const parts = [];
      for (const domains of chunks(which.domains)) parts.push(await this.backlog({ domains }, cap));
      return parts.flat();
    }
    if ("domains" in which && which.domains.length === 0) return [];
    const list = "domains" in which
      ? {
        sql: `SELECT column1 AS domain FROM (VALUES ${which.domains.map(() => "(?)").join(", ")})`,
        args: which.domains,
      }
      : {
        sql: `WITH RECURSIVE d(domain) AS (
                SELECT min(domain) FROM recipients WHERE ${IN_QUEUE}
                UNION ALL
                SELECT (SELECT min(domain) FROM recipients WHERE ${IN_QUEUE} AND domain > d.domain)
                FROM d WHERE d.domain IS NOT NULL LIMIT ?)
              SELECT domain FROM d`,
        args: [which.limit + 1],
      };
    const count = (state: string) =>
      `(SELECT count(*) FROM (SELECT 1 FROM recipients AS r
          WHERE r.domain = l.domain AND ${IN_QUEUE} AND r.state = '${state}' LIMIT ?))`;
    const result = await this.database.client.execute({
      sql: `SELECT l.domain, ${count("queued")} AS queued, ${count("deferred")} AS deferred, ${count("held")} AS held,
              (SELECT min(message_id) FROM recipients AS r WHERE r.domain = l.domain AND ${IN_QUEUE}) AS oldest
            FROM (${list.sql}) AS l WHERE l.domain IS NOT NULL`,
      args: [cap, cap, cap, ...list.args],
    });
    return result.rows
      .filter((r) => r.oldest !== null)
      .map((r) => ({
        domain: String(r.domain),
        queued: Number(r.queued),
        deferred: Number(r.deferred),
        held: Number(r.held),
        oldestMessageId: String(r.oldest),
      }));
  }

  /**
   * Every domain's recipients in the queue, queued, deferred (in flight
   * included) and held, in one grouped count over the index
   * recipients_in_queue alone: no table row is read, but every queued
   * recipient's index entry is, so callers that ask often cache the answer
   * (metrics do).
   */
  async inQueueCounts(): Promise<InQueueCount[]> {
    const result = await this.database.client.execute(
      `SELECT domain, state, count(*) AS n FROM recipients WHERE ${IN_QUEUE} GROUP BY domain, state`,
    );
    const byDomain = new Map<string, { domain: string; queued: number; deferred: number; held: number }>();
    for (const row of result.rows) {
      const domain = String(row.domain);
      let counts = byDomain.get(domain);
      if (!counts) byDomain.set(domain, counts = { domain, queued: 0, deferred: 0, held: 0 });
      counts[row.state as "queued" | "deferred" | "held"] = Number(row.n);
    }
    return [...byDomain.values()];
  }

  /**
   * Make the deferred recipients at these domains due now, leaving those in
   * flight (leased) and those held alone; returns how many.
   */
  async dueNowAt(domains: readonly string[]): Promise<number> {
    const now = this.clock.now();
    let due = 0;
    for (const chunk of chunks(domains)) {
      const result = await this.database.client.execute({
        sql: `UPDATE recipients SET next_attempt_at = ?
              WHERE domain IN (${marks(chunk.length)}) AND ${IN_QUEUE} AND ${PENDING}
                AND state = 'deferred' AND lease_owner IS NULL AND next_attempt_at > ?`,
        args: [now, ...chunk, now],
      });
      due += result.rowsAffected;
    }
    return due;
  }
}
