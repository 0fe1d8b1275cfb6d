import { and, asc, eq, gt, inArray, sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Clock } from "../core/clock.ts";
import { newId } from "../core/id.ts";
import type { Database } from "./database.ts";
import { GroupCommit } from "./group-commit.ts";
import { events, messages, recipients, settings, type EventType, type RecipientState } from "./schema.ts";

export interface NewRecipient {
  readonly address: string;
  readonly domain: string;
  readonly notify?: readonly string[];
  readonly orcpt?: string;
}

export interface NewMessage {
  readonly mailFrom: string;
  readonly recipients: readonly NewRecipient[];
  readonly body: Uint8Array;
  readonly source: "smtp" | "http" | "bounce";
  readonly clientIp?: string;
  readonly authUser?: string;
  readonly dsnRet?: "FULL" | "HDRS";
  readonly dsnEnvid?: string;
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Scheduled delivery: not attempted before this time. */
  readonly sendAt?: number;
}

/** A recipient the delivery loop has leased, with what it needs from its message. */
export interface Claim {
  readonly recipientId: number;
  readonly messageId: string;
  readonly address: string;
  readonly domain: string;
  readonly attempts: number;
  readonly dsnNotify?: string;
  readonly dsnOrcpt?: string;
  readonly mailFrom: string;
  readonly messageCreatedAt: number;
  /** The submitter's tags and metadata, echoed in every event about the message. */
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export type FinalState = Extract<RecipientState, "delivered" | "bounced" | "expired">;

/** What one attempt did to one recipient; written with its event in one transaction. */
export interface Outcome {
  readonly recipientId: number;
  readonly messageId: string;
  readonly address: string;
  readonly state: FinalState | "deferred";
  readonly reply: string;
  /** For deferred: when to try again. */
  readonly nextAttemptAt?: number;
  /** False when nothing was tried (a suspended destination): the attempt count stays. */
  readonly counted?: boolean;
  readonly event: Readonly<Record<string, unknown>>;
  /** Events that follow the state change's own, such as a complaint after a delivery. */
  readonly followingEvents?: readonly { readonly type: EventType; readonly data: Readonly<Record<string, unknown>> }[];
}

/** Rows per INSERT: well under SQLite's limit of bound variables per statement. */
const ROWS_PER_INSERT = 500;

function chunks<T>(rows: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

const EVENT_OF_STATE: Record<Outcome["state"], EventType> = {
  delivered: "delivered",
  deferred: "deferred",
  bounced: "bounced",
  expired: "expired",
};

/** The queue: the only module that writes SQL. Every state change writes its event in the same batch. */
export class QueueStore {
  private readonly enqueues: GroupCommit<{ id: string; message: NewMessage }>;

  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly nodeId: string,
  ) {
    this.enqueues = new GroupCommit((items) => this.writeBatch(this.insertStatements(items)));
  }

  /** Durably store a message and its recipients; resolves after the commit that carries it. */
  async enqueue(message: NewMessage): Promise<string> {
    const id = newId(this.clock.now());
    await this.enqueues.submit({ id, message });
    return id;
  }

  /**
   * Multi-row inserts for a whole group of messages: three statements per
   * chunk of rows rather than three per message, since building and
   * preparing SQL costs more than running it.
   */
  private insertStatements(items: readonly { id: string; message: NewMessage }[]): BatchItem<"sqlite">[] {
    const { db } = this.database;
    const now = this.clock.now();
    const messageRows = items.map(({ id, message: m }) => ({
      id,
      createdAt: now,
      mailFrom: m.mailFrom,
      source: m.source,
      clientIp: m.clientIp,
      authUser: m.authUser,
      size: m.body.byteLength,
      dsnRet: m.dsnRet,
      dsnEnvid: m.dsnEnvid,
      tags: m.tags ? [...m.tags] : undefined,
      metadata: m.metadata ? { ...m.metadata } : undefined,
      body: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength),
    }));
    const recipientRows = items.flatMap(({ id, message: m }) =>
      m.recipients.map((r) => ({
        messageId: id,
        address: r.address,
        domain: r.domain,
        state: "queued" as const,
        nextAttemptAt: Math.max(now, m.sendAt ?? now),
        dsnNotify: r.notify?.join(","),
        dsnOrcpt: r.orcpt,
        updatedAt: now,
      })),
    );
    const eventRows = items.flatMap(({ id, message: m }) =>
      m.recipients.map((r) => ({
        at: now,
        type: "received" as const,
        messageId: id,
        recipient: r.address,
        data: { mail_from: m.mailFrom, source: m.source, size: m.body.byteLength, tags: m.tags, metadata: m.metadata },
      })),
    );
    return [
      ...chunks(messageRows, ROWS_PER_INSERT).map((rows) => db.insert(messages).values(rows)),
      ...chunks(recipientRows, ROWS_PER_INSERT).map((rows) => db.insert(recipients).values(rows)),
      ...chunks(eventRows, ROWS_PER_INSERT).map((rows) => db.insert(events).values(rows)),
    ];
  }

  private async writeBatch(statements: BatchItem<"sqlite">[]): Promise<void> {
    if (statements.length === 0) return;
    await this.database.db.batch(statements as [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]);
  }

  /**
   * Lease up to `limit` due recipients. The lease is the due time itself:
   * claimed rows move to now + leaseMs, so the due index never has to skip them.
   */
  async claimDue(limit: number, leaseMs: number): Promise<Claim[]> {
    const now = this.clock.now();
    const result = await this.database.client.execute({
      sql: `UPDATE recipients SET lease_owner = ?, next_attempt_at = ?
            WHERE id IN (SELECT id FROM recipients
                         WHERE state IN ('queued', 'deferred') AND next_attempt_at <= ?
                         ORDER BY next_attempt_at LIMIT ?)
            RETURNING id, message_id, address, domain, attempts, dsn_notify, dsn_orcpt`,
      args: [this.nodeId, now + leaseMs, now, limit],
    });
    if (result.rows.length === 0) return [];
    const ids = [...new Set(result.rows.map((r) => String(r.message_id)))];
    const envelopes = await this.database.db
      .select({
        id: messages.id,
        mailFrom: messages.mailFrom,
        createdAt: messages.createdAt,
        tags: messages.tags,
        metadata: messages.metadata,
      })
      .from(messages)
      .where(inArray(messages.id, ids));
    const byId = new Map(envelopes.map((e) => [e.id, e]));
    return result.rows.map((r) => {
      const envelope = byId.get(String(r.message_id))!;
      return {
        recipientId: Number(r.id),
        messageId: String(r.message_id),
        address: String(r.address),
        domain: String(r.domain),
        attempts: Number(r.attempts),
        dsnNotify: r.dsn_notify === null ? undefined : String(r.dsn_notify),
        dsnOrcpt: r.dsn_orcpt === null ? undefined : String(r.dsn_orcpt),
        mailFrom: envelope.mailFrom,
        messageCreatedAt: envelope.createdAt,
        tags: envelope.tags ?? undefined,
        metadata: envelope.metadata ?? undefined,
      };
    });
  }

  /** Make every recipient leased by this node due now: used at start (after a crash) and at shutdown. */
  async releaseLeases(): Promise<number> {
    const result = await this.database.client.execute({
      sql: `UPDATE recipients SET lease_owner = NULL, next_attempt_at = MIN(next_attempt_at, ?)
            WHERE lease_owner = ? AND state IN ('queued', 'deferred')`,
      args: [this.clock.now(), this.nodeId],
    });
    return result.rowsAffected;
  }

  /** The earliest due time of any pending recipient, to sleep until then. */
  async nextDueAt(): Promise<number | undefined> {
    const result = await this.database.client.execute(
      "SELECT MIN(next_attempt_at) AS due FROM recipients WHERE state IN ('queued', 'deferred')",
    );
    const due = result.rows[0]?.due;
    return due === null || due === undefined ? undefined : Number(due);
  }

  async loadMessage(id: string) {
    const [row] = await this.database.db.select().from(messages).where(eq(messages.id, id));
    return row;
  }

  /** Record attempt outcomes (and any follow-up messages such as DSNs) in one transaction. */
  async record(outcomes: readonly Outcome[], followUps: readonly NewMessage[] = []): Promise<string[]> {
    const { db } = this.database;
    const now = this.clock.now();
    const statements: BatchItem<"sqlite">[] = [];
    for (const o of outcomes) {
      statements.push(
        db
          .update(recipients)
          .set({
            state: o.state,
            attempts: o.counted === false ? recipients.attempts : sql`${recipients.attempts} + 1`,
            lastReply: o.reply,
            leaseOwner: null,
            nextAttemptAt: o.state === "deferred" ? (o.nextAttemptAt ?? now) : now,
            updatedAt: now,
          })
          .where(eq(recipients.id, o.recipientId)),
        db.insert(events).values([
          { at: now, type: EVENT_OF_STATE[o.state], messageId: o.messageId, recipient: o.address, data: { ...o.event } },
          ...(o.followingEvents ?? []).map((e) => ({ at: now, type: e.type, messageId: o.messageId, recipient: o.address, data: { ...e.data } })),
        ]),
      );
    }
    const created = followUps.map((message) => ({ id: newId(now), message }));
    if (created.length > 0) statements.push(...this.insertStatements(created));
    await this.writeBatch(statements);
    return created.map((c) => c.id);
  }

  /**
   * Cancel what is still pending of a message; returns how many recipients were
   * cancelled. The events and the update select the same rows inside one
   * transaction, so a delivery recorded meanwhile is never overwritten.
   */
  async cancel(messageId: string): Promise<number> {
    const now = this.clock.now();
    const pending = "message_id = ? AND state IN ('queued', 'deferred')";
    const [, updated] = await this.database.client.batch(
      [
        {
          sql: `INSERT INTO events (at, type, message_id, recipient, data)
                SELECT ?, 'cancelled', message_id, address, '{}' FROM recipients WHERE ${pending} ORDER BY id`,
          args: [now, messageId],
        },
        {
          sql: `UPDATE recipients SET state = 'cancelled', lease_owner = NULL, updated_at = ? WHERE ${pending}`,
          args: [now, messageId],
        },
      ],
      "write",
    );
    return updated!.rowsAffected;
  }

  async messageView(id: string) {
    const { db } = this.database;
    const [message] = await db
      .select({
        id: messages.id,
        createdAt: messages.createdAt,
        mailFrom: messages.mailFrom,
        source: messages.source,
        size: messages.size,
        tags: messages.tags,
        metadata: messages.metadata,
      })
      .from(messages)
      .where(eq(messages.id, id));
    if (!message) return undefined;
    const rcpts = await db.select().from(recipients).where(eq(recipients.messageId, id)).orderBy(asc(recipients.id));
    const log = await db.select().from(events).where(eq(events.messageId, id)).orderBy(asc(events.id));
    return { message, recipients: rcpts, events: log };
  }

  async listEvents(after: number, limit: number, filter?: SQL) {
    return this.database.db
      .select()
      .from(events)
      .where(filter ? and(gt(events.id, after), filter) : gt(events.id, after))
      .orderBy(asc(events.id))
      .limit(limit);
  }

  async getSetting(key: string): Promise<string | undefined> {
    const [row] = await this.database.db.select().from(settings).where(eq(settings.key, key));
    return row?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.database.db.insert(settings).values({ key, value }).onConflictDoUpdate({ target: settings.key, set: { value } });
  }
}
