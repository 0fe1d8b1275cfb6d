import { and, asc, gt, gte, inArray, lt, type SQL, sql } from "drizzle-orm";
import type { Database } from "./database.ts";
import { events, type EventType, messages } from "./schema.ts";

/** One row of the durable event log. */
export type EventRecord = typeof events.$inferSelect;

/** Which events to read (every field optional, all given must hold). */
export interface EventFilter {
  readonly types?: readonly EventType[];
  readonly messageId?: string;
  readonly recipient?: string;
  /** Events of messages that carry this tag. */
  readonly tag?: string;
  /**
   * Events of messages whose envelope sender is at one of these domains (an
   * API key limited to sending domains), and the domain_changed events of
   * these domains; undefined: no such limit.
   */
  readonly senderDomains?: readonly string[];
  /** Written at or after `since` and before `until` (ms). */
  readonly since?: number;
  readonly until?: number;
}

/** A LIKE pattern that matches `text` literally (escape character `\`). */
const literal = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The messages a domain-limited reader may see: its envelope sender's domain, as `senderAllowed` decides. */
function fromDomains(domains: readonly string[]): SQL {
  if (domains.length === 0) return sql`0`;
  const patterns = domains.map((d) => sql`m.mail_from like ${`%@${literal(d)}`} escape '\\'`);
  return sql`(exists (select 1 from messages as m where m.id = ${events.messageId} and (${
    sql.join(patterns, sql` or `)
  })) or (${events.type} = 'domain_changed' and lower(json_extract(${events.data}, '$.domain')) in (${
    sql.join(domains.map((d) => sql`${d.toLowerCase()}`), sql`, `)
  })))`;
}

/**
 * The WHERE clause of a filter (undefined: every event). Message, recipient
 * and type are read from their indexes; tag and sender domain look the
 * event's message up by its primary key.
 */
export function eventFilterSql(filter: EventFilter): SQL | undefined {
  const parts: SQL[] = [];
  if (filter.types !== undefined) parts.push(inArray(events.type, [...filter.types]));
  if (filter.messageId !== undefined) parts.push(sql`${events.messageId} = ${filter.messageId}`);
  if (filter.recipient !== undefined) parts.push(sql`${events.recipient} = ${filter.recipient}`);
  if (filter.tag !== undefined) {
    parts.push(
      sql`exists (select 1 from messages as m, json_each(m.tags) as t where m.id = ${events.messageId} and t.value = ${filter.tag})`,
    );
  }
  if (filter.senderDomains !== undefined) parts.push(fromDomains(filter.senderDomains));
  if (filter.since !== undefined) parts.push(gte(events.at, filter.since));
  if (filter.until !== undefined) parts.push(lt(events.at, filter.until));
  return parts.length === 0 ? undefined : and(...parts);
}

/** The event log after the cursor `after`, in id order, the events `filter` lets through (a page of `limit`). */
export function readEvents(
  database: Database,
  after: number,
  limit: number,
  filter: EventFilter = {},
): Promise<EventRecord[]> {
  const where = eventFilterSql(filter);
  return database.db
    .select()
    .from(events)
    .where(where ? and(gt(events.id, after), where) : gt(events.id, after))
    .orderBy(asc(events.id))
    .limit(limit);
}

/** What an accounting record repeats of an event's message. */
export interface MessageFacts {
  readonly createdAt: number;
  readonly mailFrom: string;
  readonly source: string;
  readonly clientIp: string | null;
  readonly size: number;
}

/** The facts of these messages (one query); a message purged since (RELAY_RETENTION) is absent. */
export async function readMessageFacts(
  database: Database,
  ids: readonly string[],
): Promise<Map<string, MessageFacts>> {
  if (ids.length === 0) return new Map();
  const rows = await database.db
    .select({
      id: messages.id,
      createdAt: messages.createdAt,
      mailFrom: messages.mailFrom,
      source: messages.source,
      clientIp: messages.clientIp,
      size: messages.size,
    })
    .from(messages)
    .where(inArray(messages.id, [...new Set(ids)]));
  return new Map(rows.map(({ id, ...facts }) => [id, facts]));
}

/** The event log as its readers see it: where a reader of new events starts, and the pages after a cursor. */
export class EventLog {
  constructor(private readonly database: Database) {}

  /** The id of the newest event, 0 when there is none: where a reader of new events starts. */
  async lastEventId(): Promise<number> {
    const [row] = await this.database.db.select({ id: sql<number | null>`max(${events.id})` }).from(events);
    return Number(row?.id ?? 0);
  }

  /** The event log after the cursor `after`, in id order, the events `filter` lets through. */
  listEvents(after: number, limit: number, filter: EventFilter = {}): Promise<EventRecord[]> {
    return readEvents(this.database, after, limit, filter);
  }
}
