import type { Clock } from "../core/clock.ts";
import type { Database } from "./database.ts";
import { EVENT_COLUMNS } from "./message-rows.ts";
import { insertRows } from "./raw-insert.ts";
import { writeBatch } from "./write-batch.ts";

/**
 * `rejected` events: a message refused or discarded at ingress (a content
 * scanner's verdict), so nothing of it is queued. The events carry the id
 * the submitter was told, one per recipient, as `received` events would.
 */
export class RejectionLog {
  constructor(private readonly database: Database, private readonly clock: Clock) {}

  async record(messageId: string, recipients: readonly string[], data: Record<string, unknown>): Promise<void> {
    const now = this.clock.now();
    const json = JSON.stringify(data);
    await writeBatch(
      this.database,
      insertRows("events", EVENT_COLUMNS, recipients.map((address) => [now, "rejected", messageId, address, json])),
    );
  }
}
