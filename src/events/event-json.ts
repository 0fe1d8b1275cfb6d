import type { EventRecord } from "../queue/event-log.ts";

/**
 * An event as the relay shows it, the same in GET /v1/events and in webhook
 * deliveries: its id (and the same as a cursor), the time in ISO 8601, the
 * type, the message and recipient it is about (null for a destination's or a
 * domain's event), then the fields of its type.
 */
export function eventJson(e: EventRecord) {
  return {
    id: e.id,
    cursor: String(e.id),
    at: new Date(e.at).toISOString(),
    type: e.type,
    message_id: e.messageId,
    recipient: e.recipient,
    ...e.data,
  };
}
