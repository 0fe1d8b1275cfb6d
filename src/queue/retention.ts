import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import { firstIdAt } from "../core/id.ts";
import type { Database } from "./database.ts";
import { FINISHED, STILL_OPEN } from "./finished.ts";
import { writeBatch } from "./write-batch.ts";

/**
 * Every webhook endpoint has taken the message's events (its cursor is past
 * them; none registered: true), so that retention never deletes an event
 * before it was sent. Cursors only move forward, so what holds here still
 * holds when the purge's transaction runs.
 */
const TAKEN_BY_WEBHOOKS = `NOT EXISTS (SELECT 1 FROM events AS e WHERE e.message_id = messages.id
  AND e.id > (SELECT min(cursor) FROM webhook_progress))`;

/** Deleting finished messages, a batch at a time. */
export class Retention {
  constructor(private readonly database: Database) {}

  /**
   * Delete up to `limit` finished messages received before `before` (every
   * recipient final, no DSN owed) with their recipients and events, in one
   * transaction; returns how many. Ids sort by time, so the candidates come
   * from the primary key, not a scan.
   */
  async purgeFinished(before: number, limit: number): Promise<number> {
    const found = await this.database.client.execute({
      sql: `SELECT id FROM messages WHERE id < ? AND ${FINISHED} AND ${TAKEN_BY_WEBHOOKS} ORDER BY id LIMIT ?`,
      args: [firstIdAt(before), limit],
    });
    const ids = found.rows.map((r) => String(r.id));
    if (ids.length === 0) return 0;
    const list = ids.map(() => "?").join(", ");
    // Checked again inside the transaction: a message that came back to life meanwhile is kept whole.
    const live = `SELECT r.message_id FROM recipients AS r WHERE r.message_id IN (${list}) AND ${STILL_OPEN}`;
    await writeBatch(this.database, [
      {
        sql: `DELETE FROM events WHERE message_id IN (${list}) AND message_id NOT IN (${live})`,
        args: [...ids, ...ids],
      },
      {
        sql: `DELETE FROM recipients WHERE message_id IN (${list}) AND message_id NOT IN (${live})`,
        args: [...ids, ...ids],
      },
      {
        sql:
          `DELETE FROM messages WHERE id IN (${list}) AND NOT EXISTS (SELECT 1 FROM recipients AS r WHERE r.message_id = messages.id)`,
        args: ids,
      },
    ]);
    return ids.length;
  }
}

/** Messages per transaction: short transactions, so acceptance never waits long behind a purge. */
const BATCH = 500;
/** Batches per run; what is left waits for the next run. */
const MAX_BATCHES = 200;

/**
 * RELAY_RETENTION: delete what is finished and older than the retention
 * (messages, their recipients and events), a batch at a time. Bodies are
 * gone already (dropped when the message finished); this keeps the rows and
 * the event log from growing without end on a node's small disk.
 */
export async function purgeFinished(
  retention: Pick<Retention, "purgeFinished">,
  clock: Clock,
  retentionMs: number,
  log: Logger,
): Promise<number> {
  const before = clock.now() - retentionMs;
  let purged = 0;
  // A failure goes to the caller (the periodic job logs it); what was purged before it is still said.
  try {
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const n = await retention.purgeFinished(before, BATCH);
      purged += n;
      if (n < BATCH) break;
    }
  } finally {
    if (purged > 0) log("info", "purged finished messages past the retention", { messages: purged });
  }
  return purged;
}
