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

/** Every webhook endpoint has sent the event at `e.id` (none registered: true). */
const EVENT_TAKEN_BY_WEBHOOKS = `NOT EXISTS (SELECT 1 FROM webhook_progress AS w WHERE w.cursor < e.id)`;

/** Deleting finished messages, and events of no message, a batch at a time. */
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

  /**
   * Delete up to `limit` events older than `before` that belong to no
   * message (refusals, a destination's state, a domain's checks, and those
   * whose message is purged); returns how many. Events are written in time
   * order, so the old ones are the ids below the first young one, and the
   * scan stops there rather than reading the whole log.
   */
  async purgeUnattached(before: number, limit: number): Promise<number> {
    const young = await this.database.client.execute({
      sql: "SELECT id FROM events WHERE at >= ? ORDER BY id LIMIT 1",
      args: [before],
    });
    const firstYoung = young.rows[0] ? Number(young.rows[0].id) : Number.MAX_SAFE_INTEGER;
    const result = await this.database.client.execute({
      sql: `DELETE FROM events WHERE id IN (
              SELECT e.id FROM events AS e
              WHERE e.id < ? AND e.at < ? AND ${EVENT_TAKEN_BY_WEBHOOKS}
                AND (e.message_id IS NULL OR NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.id = e.message_id))
              ORDER BY e.id LIMIT ?)`,
      args: [firstYoung, before, limit],
    });
    return result.rowsAffected;
  }
}

/** Messages per transaction: short transactions, so acceptance never waits long behind a purge. */
const BATCH = 500;
/** Batches per run; what is left waits for the next run. */
const MAX_BATCHES = 200;

/**
 * RELAY_RETENTION: delete what is finished and older than the retention
 * (messages, their recipients and events; then events of no message), a
 * batch at a time. Bodies are
 * gone already (dropped when the message finished); this keeps the rows and
 * the event log from growing without end on a node's small disk.
 */
export async function purgeFinished(
  retention: Pick<Retention, "purgeFinished" | "purgeUnattached">,
  clock: Clock,
  retentionMs: number,
  log: Logger,
): Promise<number> {
  const before = clock.now() - retentionMs;
  let purged = 0;
  let events = 0;
  // A failure goes to the caller (the periodic job logs it); what was purged before it is still said.
  try {
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const n = await retention.purgeFinished(before, BATCH);
      purged += n;
      if (n < BATCH) break;
    }
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const n = await retention.purgeUnattached(before, BATCH);
      events += n;
      if (n < BATCH) break;
    }
  } finally {
    if (purged > 0) log("info", "purged finished messages past the retention", { messages: purged });
    if (events > 0) log("info", "purged events of no message past the retention", { events });
  }
  return purged;
}
