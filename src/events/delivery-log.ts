import type { BatchLogger } from "../core/log.ts";
import type { EventType } from "../queue/schema.ts";
import type { EventRecord } from "../queue/event-log.ts";
import type { EventSubscriber } from "./feed.ts";

/**
 * The fields of a delivery log line, per event type, in the order they are
 * written: the event data's keys, kept under their names (docs/logs.md), so
 * that a line and the event it reports read the same. Types not listed (the
 * destination's and the sending domains' changes) are logged where they happen.
 */
const OUTCOME = [
  "destination",
  "mx",
  "mx_ip",
  "source_ip",
  "attempt",
  "delay_ms",
  "duration_ms",
  "reply",
  "category",
] as const;
const FIELDS: Partial<Record<EventType, readonly string[]>> = {
  received: ["mail_from", "source", "client_ip", "auth_user", "size", "priority"],
  delivered: OUTCOME,
  deferred: [...OUTCOME, "next_attempt_at"],
  bounced: [...OUTCOME, "bounce_type"],
  expired: [...OUTCOME, "bounce_type"],
  suppressed: ["reason", "scope", "suppressed_address"],
  complained: ["feedback_type"],
  unsubscribed: ["via"],
  cancelled: [],
  dsn_sent: ["kind", "dsn_message_id", "to"],
  // A content scanner's refusal or discard (nothing queued), and its quarantine.
  rejected: ["mail_from", "source", "client_ip", "auth_user", "size", "action", "reply", "milter"],
  held: ["reason", "milter", "quarantine"],
  released: [],
};

/** Event data keys whose name in a line says more: a DSN goes `to` the message's sender. */
const RENAMED: Readonly<Record<string, string>> = { to: "sender" };

/**
 * The fields of one event's line: message id and recipient first (named as
 * in the API; `message` is the line's own text), then its type's own, then
 * the TLS version and the tags.
 */
export function deliveryLogFields(event: EventRecord): Record<string, unknown> | undefined {
  const keys = FIELDS[event.type];
  if (!keys) return undefined;
  const data = event.data;
  const fields: Record<string, unknown> = {
    message_id: event.messageId ?? undefined,
    recipient: event.recipient ?? undefined,
  };
  for (const key of keys) {
    const value = data[key];
    if (value !== undefined && value !== null) fields[RENAMED[key] ?? key] = value;
  }
  const tls = data.tls as { version?: string } | undefined;
  if (tls?.version !== undefined) fields.tls = tls.version;
  const tags = data.tags;
  if (Array.isArray(tags) && tags.length > 0) fields.tags = tags.join(",");
  return fields;
}

/**
 * The delivery log: one `info` line per event about a message (received,
 * delivered, deferred, bounced, expired, suppressed, dsn_sent, ...), what a
 * Postfix operator greps in maillog. It reads the event log after the fact
 * (an EventFeed subscriber), so the mail flow does no logging work, and
 * writes a page's lines at once.
 */
export function deliveryLog(out: BatchLogger): EventSubscriber {
  return (page) => {
    try {
      for (const event of page) {
        const fields = deliveryLogFields(event);
        if (fields) out.log("info", event.type, fields);
      }
    } finally {
      out.flush();
    }
  };
}
