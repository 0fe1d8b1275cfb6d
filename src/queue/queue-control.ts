import type { InStatement } from "@libsql/client";
import type { Clock } from "../core/clock.ts";
import type { Database } from "./database.ts";
import { dropFinishedBodies } from "./finished.ts";
import { IN_QUEUE, PENDING } from "./queue-states.ts";
import { type RecipientSelector, selectorSql } from "./recipient-selector.ts";

/**
 * The operator's hand on recipients in the queue: hold, release, retry now,
 * cancel; each for a recipient, a message or a destination's domains
 * (RecipientSelector). A state change writes its event, one per recipient,
 * in the same transaction, the event and the update selecting the same rows
 * (an INSERT ... SELECT before the UPDATE). Bouncing needs delivery (the
 * outcome, the DSN): OperatorCommands.bounce.
 */
export class QueueControl {
  constructor(private readonly database: Database, private readonly clock: Clock) {}

  /**
   * Hold what is still pending: the state `held`, which no claim selects, so
   * delivery leaves it until it is released, across restarts. One being sent
   * now finishes its attempt: delivered or bounced it stays so; deferred, it
   * stays held (store.ts RECORD_OUTCOME). Returns how many were held.
   */
  hold(at: RecipientSelector): Promise<number> {
    return this.change(at, PENDING, {
      event: "'held', json_object('state', state)",
      set: "state = 'held', lease_owner = NULL",
    });
  }

  /**
   * Release held recipients: back to queued (never tried) or deferred, due
   * when they were due (at once if that time passed while held). Returns how
   * many were released.
   */
  release(at: RecipientSelector): Promise<number> {
    return this.change(at, "state = 'held'", {
      event: "'released', '{}'",
      // A lease left on it by an operator's bounce that was never recorded goes with the hold.
      set: "state = CASE WHEN attempts > 0 THEN 'deferred' ELSE 'queued' END, lease_owner = NULL",
    });
  }

  /**
   * Cancel what is still in the queue (held too): never delivered, no DSN.
   * Returns how many were cancelled.
   */
  cancel(at: Extract<RecipientSelector, { messageId: string }>): Promise<number> {
    return this.change(at, IN_QUEUE, {
      event: "'cancelled', '{}'",
      set: "state = 'cancelled', lease_owner = NULL, dsn_pending = NULL",
      finishes: true,
    });
  }

  /**
   * Make deferred recipients due now, leaving those in flight (leased) and
   * mail scheduled by its sender alone; no state changes, so no event.
   * Returns how many were made due.
   */
  async retryNow(at: RecipientSelector): Promise<number> {
    const where = selectorSql(at);
    if (where === undefined) return 0;
    const now = this.clock.now();
    const result = await this.database.client.execute({
      sql: `UPDATE recipients SET next_attempt_at = ?
            WHERE ${where.sql} AND ${IN_QUEUE} AND ${PENDING} AND state = 'deferred'
              AND lease_owner IS NULL AND next_attempt_at > ?`,
      args: [now, ...where.args, now],
    });
    return result.rowsAffected;
  }

  /** The recipients `at` selects in state `from` get the event and the change; returns how many. */
  private async change(
    at: RecipientSelector,
    from: string,
    change: { event: string; set: string; finishes?: boolean },
  ): Promise<number> {
    const where = selectorSql(at);
    if (where === undefined) return 0;
    const now = this.clock.now();
    // IN_QUEUE first: the term the index recipients_in_queue is made for, when the selector names domains.
    const selected = `${where.sql} AND ${IN_QUEUE} AND ${from}`;
    const statements: InStatement[] = [
      {
        sql: `INSERT INTO events (at, type, data, message_id, recipient)
              SELECT ?, ${change.event}, message_id, address FROM recipients WHERE ${selected} ORDER BY id`,
        args: [now, ...where.args],
      },
      {
        sql: `UPDATE recipients SET ${change.set}, updated_at = ? WHERE ${selected}`,
        args: [now, ...where.args],
      },
    ];
    if (change.finishes && "messageId" in at) statements.push(...dropFinishedBodies([at.messageId]));
    const results = await this.database.client.batch(statements, "write");
    return results[1]!.rowsAffected;
  }
}
