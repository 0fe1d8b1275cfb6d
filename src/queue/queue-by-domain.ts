import type { Client } from "@libsql/client";
import type { DomainBacklog } from "./records.ts";
import { chunks, IN_QUEUE, marks, PENDING, ROWS_PER_STATEMENT } from "./queue-states.ts";

/**
 * The queue by recipient domain, from the index recipients_in_queue: how
 * many are queued, deferred (those in flight among them) and held, each count
 * at most `cap`, and the oldest message. For `domains`, or for the first
 * `limit` domains with recipients in the queue, in name order (each next one
 * found by a seek in the index, not a scan).
 */
export async function backlogByDomain(
  client: Client,
  which: { readonly domains: readonly string[] } | { readonly limit: number },
  cap: number,
): Promise<DomainBacklog[]> {
  if ("domains" in which && which.domains.length > ROWS_PER_STATEMENT) {
    const parts = [];
    for (const domains of chunks(which.domains)) parts.push(await backlogByDomain(client, { domains }, cap));
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
  const result = await client.execute({
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
 * Make the deferred recipients at these domains due now, leaving those in
 * flight (leased) and those held alone; returns how many.
 */
export async function dueNowAtDomains(client: Client, now: number, domains: readonly string[]): Promise<number> {
  let due = 0;
  for (const chunk of chunks(domains)) {
    const result = await client.execute({
      sql: `UPDATE recipients SET next_attempt_at = ?
            WHERE domain IN (${marks(chunk.length)}) AND ${IN_QUEUE} AND ${PENDING}
              AND state = 'deferred' AND lease_owner IS NULL AND next_attempt_at > ?`,
      args: [now, ...chunk, now],
    });
    due += result.rowsAffected;
  }
  return due;
}
