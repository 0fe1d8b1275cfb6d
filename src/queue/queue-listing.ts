import type { Client, InValue, Row } from "@libsql/client";
import type { Lane } from "../core/lane.ts";
import { firstIdAt } from "../core/id.ts";
import type { QueueCursor, QueueState } from "./queue-cursor.ts";
import { IN_QUEUE } from "./queue-states.ts";

/** What the operator asks of the queue listing (GET /v1/queue/messages); every filter optional. */
export interface QueueQuery {
  readonly state?: QueueState;
  readonly domain?: string;
  /** One recipient address (any case); names its domain too. */
  readonly recipient?: string;
  /** The envelope sender (any case). */
  readonly sender?: string;
  readonly tag?: string;
  /** Only messages received before this time (ms). */
  readonly receivedBefore?: number;
  readonly limit: number;
  /** Start after this place; absent: from the start. */
  readonly after?: QueueCursor;
}

/** One recipient in the queue, as the listing shows it. */
export interface QueuedRecipient {
  readonly recipientId: number;
  readonly messageId: string;
  readonly address: string;
  readonly domain: string;
  readonly state: QueueState;
  readonly lane: Lane;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  /** Leased by a node and its lease running: handed to delivery now. */
  readonly inFlight: boolean;
  readonly lastReply: string | null;
  readonly mailFrom: string;
  readonly tags: readonly string[];
}

export interface QueuePage {
  readonly recipients: readonly QueuedRecipient[];
  /** Where the next page starts; absent: the listing is over. */
  readonly next?: QueueCursor;
}

/**
 * Index entries a page goes over at most when a filter cannot be a seek in
 * the index (sender, tag, recipient address, age, a state without a domain):
 * such a page may come back with fewer matches, or none, and a cursor that
 * resumes after the last entry it went over. Each entry costs a lookup of
 * its row and its message's (in index order, scattered in the tables):
 * about 40 us each at a depth of a million, so a page stays well under
 * 100 ms.
 */
export const SCAN_PER_PAGE = 1000;

const KEY_ORDER = "domain, state, message_id, id";

/**
 * The queue listing: recipients in the queue (queued, deferred, held) in
 * the order of the index recipients_in_queue (domain, state, oldest message
 * first), a page at a time after a cursor (keyset paging: each page is a
 * seek in the index, so it costs the same at any depth). A domain, and a
 * state with it, are seeks in that index; every other filter is checked on
 * at most `scan` entries per page.
 */
export async function listQueue(
  client: Client,
  query: QueueQuery,
  now: number,
  scan = SCAN_PER_PAGE,
): Promise<QueuePage> {
  const domain = query.domain?.toLowerCase() ?? domainOf(query.recipient);
  if (query.domain !== undefined && query.recipient !== undefined && domainOf(query.recipient) !== domain) {
    return { recipients: [] };
  }
  const seek: string[] = [IN_QUEUE];
  const seekArgs: InValue[] = [];
  if (domain !== undefined) {
    seek.push("domain = ?");
    seekArgs.push(domain);
    if (query.state !== undefined) {
      seek.push("state = ?");
      seekArgs.push(query.state);
    }
  }
  if (query.after) {
    const a = query.after;
    seek.push(`(${KEY_ORDER}) > (?, ?, ?, ?)`);
    seekArgs.push(a.domain, a.state, a.messageId, a.recipientId);
  }
  const checks: string[] = [];
  const checkArgs: InValue[] = [];
  if (query.state !== undefined && domain === undefined) {
    checks.push("r.state = ?");
    checkArgs.push(query.state);
  }
  if (query.recipient !== undefined) {
    checks.push("lower(r.address) = lower(?)");
    checkArgs.push(query.recipient);
  }
  if (query.sender !== undefined) {
    checks.push("lower(m.mail_from) = lower(?)");
    checkArgs.push(query.sender);
  }
  if (query.tag !== undefined) {
    checks.push("EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)");
    checkArgs.push(query.tag);
  }
  if (query.receivedBefore !== undefined) {
    checks.push("r.message_id < ?");
    checkArgs.push(firstIdAt(query.receivedBefore));
  }
  // Unfiltered beyond the seek: one more than the page says whether another follows. CROSS JOIN keeps
  // SQLite's join order: the window first, then each row by its key, never a scan of messages to
  // match a filter on them.
  const window = checks.length === 0 ? query.limit + 1 : scan;
  const entries = `SELECT id FROM recipients WHERE ${seek.join(" AND ")} ORDER BY ${KEY_ORDER} LIMIT ?`;
  const result = await client.execute({
    sql: `SELECT r.id, r.message_id, r.address, r.domain, r.state, r.lane, r.attempts, r.next_attempt_at,
            r.lease_owner, r.last_reply, m.mail_from, m.tags
          FROM (${entries}) AS w CROSS JOIN recipients AS r CROSS JOIN messages AS m
          WHERE r.id = w.id AND m.id = r.message_id${checks.length === 0 ? "" : ` AND ${checks.join(" AND ")}`}
          ORDER BY r.domain, r.state, r.message_id, r.id LIMIT ?`,
    args: [...seekArgs, window, ...checkArgs, query.limit + (checks.length === 0 ? 1 : 0)],
  });
  const rows = result.rows.map((row) => recipientOf(row, now));
  if (rows.length > query.limit) {
    const page = rows.slice(0, query.limit);
    return { recipients: page, next: cursorOf(page.at(-1)!) };
  }
  if (checks.length === 0) return { recipients: rows };
  if (rows.length === query.limit) return { recipients: rows, next: cursorOf(rows.at(-1)!) };
  // Fewer matches than asked: resume after the last entry looked at, if the window was full.
  const last = await client.execute({
    sql: `SELECT id, message_id, domain, state FROM recipients WHERE ${seek.join(" AND ")}
          ORDER BY ${KEY_ORDER} LIMIT 1 OFFSET ?`,
    args: [...seekArgs, scan - 1],
  });
  const end = last.rows[0];
  if (end === undefined) return { recipients: rows };
  return {
    recipients: rows,
    next: {
      domain: String(end.domain),
      state: String(end.state) as QueueState,
      messageId: String(end.message_id),
      recipientId: Number(end.id),
    },
  };
}

function domainOf(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}

const cursorOf = (r: QueuedRecipient): QueueCursor => ({
  domain: r.domain,
  state: r.state,
  messageId: r.messageId,
  recipientId: r.recipientId,
});

function recipientOf(row: Row, now: number): QueuedRecipient {
  const nextAttemptAt = Number(row.next_attempt_at);
  return {
    recipientId: Number(row.id),
    messageId: String(row.message_id),
    address: String(row.address),
    domain: String(row.domain),
    state: String(row.state) as QueueState,
    lane: String(row.lane) as Lane,
    attempts: Number(row.attempts),
    nextAttemptAt,
    inFlight: row.lease_owner !== null && nextAttemptAt > now,
    lastReply: row.last_reply === null ? null : String(row.last_reply),
    mailFrom: String(row.mail_from),
    tags: row.tags === null ? [] : (JSON.parse(String(row.tags)) as string[]),
  };
}
