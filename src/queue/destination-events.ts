import type { Database } from "./database.ts";
import { type DestinationEventType, events } from "./schema.ts";

/** A change of a destination's state, for the event log: it concerns no message and no recipient. */
export interface NewDestinationEvent {
  readonly type: DestinationEventType;
  readonly at: number;
  readonly data: Record<string, unknown>;
}

/** Destination events (throttled, suspended, resumed) in the durable event log beside the recipients' own. */
export class DestinationEventStore {
  constructor(private readonly database: Database) {}

  async append(event: NewDestinationEvent): Promise<void> {
    await this.database.db.insert(events).values({
      at: event.at,
      type: event.type,
      messageId: null,
      recipient: null,
      data: event.data,
    });
  }
}
