import { and, eq } from "drizzle-orm";
import type { Clock } from "../core/clock.ts";
import { hardBounceSuppression } from "./bounce-suppression.ts";
import type { Database } from "./database.ts";
import { EVENT_COLUMNS } from "./message-rows.ts";
import { insertRows } from "./raw-insert.ts";
import { recipients, type RecipientState } from "./schema.ts";
import { inPlace, type SharedWrites } from "./shared-writes.ts";
import { type NewSuppression, suppressionUpsert } from "./suppressions.ts";
import { writeBatch } from "./write-batch.ts";

/** Feedback about a message after its delivery (src/feedback/): the recipient it is about, and its event. */
export class FeedbackStore {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    /** RELAY_SUPPRESS_BOUNCE_CATEGORIES: a hard bounce of one of these suppresses its address (QueueStore's too). */
    private readonly suppressBounceCategories: readonly string[],
    /** Where the suppressions go: in place on a node alone, through the outbox in a fleet. */
    private readonly sharedWrites: SharedWrites = inPlace,
  ) {}

  /** One recipient of one message, as feedback about it (a bounce, a complaint) finds it; undefined if no such row. */
  async recipientOf(
    messageId: string,
    recipientId: number,
  ): Promise<{ address: string; state: RecipientState; attempts: number } | undefined> {
    const [row] = await this.database.db
      .select({ address: recipients.address, state: recipients.state, attempts: recipients.attempts })
      .from(recipients)
      .where(and(eq(recipients.id, recipientId), eq(recipients.messageId, messageId)));
    return row;
  }

  /**
   * An event about a recipient that changes no state: feedback that came back
   * after delivery (a bounce from a later hop, a complaint). In the same
   * transaction, the suppression it calls for: a hard bounce of a configured
   * category (as when delivery sees one), or a complaint other than
   * "not-spam", which says the opposite of a complaint (RFC 5965 3.1).
   */
  async record(event: {
    type: "bounced" | "complained";
    messageId: string;
    address: string;
    data: Record<string, unknown>;
  }): Promise<void> {
    const now = this.clock.now();
    const row = [now, event.type, event.messageId, event.address, JSON.stringify(event.data)];
    const suppressions: NewSuppression[] = event.type === "bounced"
      ? hardBounceSuppression(this.suppressBounceCategories, event.messageId, event.address, event.data)
      : event.data.feedback_type === "not-spam"
      ? []
      : [{
        address: event.address,
        scope: { kind: "global" },
        reason: "complaint",
        source: { event: "complained", messageId: event.messageId },
      }];
    await writeBatch(this.database, [
      ...insertRows("events", EVENT_COLUMNS, [row]),
      ...this.sharedWrites(suppressionUpsert(suppressions, now), now),
    ]);
  }
}
