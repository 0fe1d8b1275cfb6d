/**
 * The event log as accounting CSV (`relay events export --format csv`): one
 * record per event, in columns named as PowerMTA's accounting files name
 * theirs where the relay has the same fact, and plainly where it has its own.
 */
import type { EventRecord, MessageFacts } from "./event-log.ts";
import { csvLine } from "./suppression-csv.ts";

export const EVENT_CSV_COLUMNS = [
  "type",
  "timeLogged",
  "timeQueued",
  "orig",
  "rcpt",
  "dsnAction",
  "dsnStatus",
  "dsnDiag",
  "dsnMta",
  "bounceCat",
  "srcType",
  "srcIp",
  "dlvSourceIp",
  "dlvDestinationIp",
  "dlvSize",
  "messageId",
  "destination",
  "attempt",
  "delayMs",
  "tags",
] as const;

/** RFC 3464 2.3.3 Action of a recipient's event; empty for events that are not about delivering it. */
const ACTION: Partial<Record<EventRecord["type"], string>> = {
  delivered: "relayed",
  deferred: "delayed",
  bounced: "failed",
  expired: "failed",
};

const text = (value: unknown) => (value === undefined || value === null ? "" : String(value));
const iso = (ms: number | undefined) => (ms === undefined ? "" : new Date(ms).toISOString());

/** "550 5.1.1 no such user" -> "5.1.1"; a reply without one gets its class (RFC 3463 3.1): "5.0.0". */
function statusOf(reply: string): string {
  const match = /^([245])\d\d(?:\s+([245]\.\d{1,3}\.\d{1,3}))?/.exec(reply);
  if (!match) return "";
  return match[2] ?? `${match[1]}.0.0`;
}

/** One CSV record for an event; `message`: its message's facts, when the message is still stored. */
export function eventCsvLine(e: EventRecord, message: MessageFacts | undefined): string {
  const d = e.data;
  const reply = typeof d.reply === "string" ? d.reply : "";
  const mx = text(d.mx);
  const mta = mx !== "" && d.mx_ip ? `${mx} (${text(d.mx_ip)})` : mx;
  const tags = Array.isArray(d.tags) ? d.tags.join(",") : "";
  return csvLine([
    e.type,
    iso(e.at),
    iso(message?.createdAt),
    message?.mailFrom ?? text(d.mail_from),
    text(e.recipient),
    ACTION[e.type] ?? "",
    statusOf(reply),
    reply === "" ? "" : `smtp;${reply}`,
    mta,
    text(d.category),
    message?.source ?? text(d.source),
    message?.clientIp ?? text(d.client_ip),
    text(d.source_ip),
    text(d.mx_ip),
    message ? String(message.size) : text(d.size),
    text(e.messageId),
    text(d.destination),
    text(d.attempt),
    text(d.delay_ms),
    tags,
  ]);
}
