import type { Row } from "@libsql/client";
import { asc, eq } from "drizzle-orm";
import type { Clock } from "../core/clock.ts";
import { newId } from "../core/id.ts";
import { type Lane, lanes } from "../core/lane.ts";
import type { TlsTag } from "../core/tls-tag.ts";
import { hardBounceSuppression } from "./bounce-suppression.ts";
import type { Database } from "./database.ts";
import { DsnStore } from "./dsn-store.ts";
import { EventLog } from "./event-log.ts";
import { FeedbackStore } from "./feedback-store.ts";
import { dropFinishedBodies } from "./finished.ts";
import { type CommitMeter, GroupCommit } from "./group-commit.ts";
import { isMissingFile, MessageBodies } from "./message-bodies.ts";
import { EVENT_COLUMNS } from "./message-rows.ts";
import { QueueByDomain } from "./queue-by-domain.ts";
import { QueueControl } from "./queue-control.ts";
import { listQueue, type QueuePage, type QueueQuery } from "./queue-listing.ts";
import { chunks, IN_QUEUE, marks, PENDING, ROWS_PER_STATEMENT } from "./queue-states.ts";
import { insertRows } from "./raw-insert.ts";
import { Retention } from "./retention.ts";
import { type RecipientSelector, selectorSql } from "./recipient-selector.ts";
import type { Claim, NewMessage, Outcome, Postponement, StoredMessage } from "./records.ts";
import { events, type EventType, messages, recipients } from "./schema.ts";
import type { BodySpool } from "./spool.ts";
import { inPlace, type SharedWrites } from "./shared-writes.ts";
import { type NewSuppression, suppressionUpsert } from "./suppressions.ts";
import { rawStatement, type Statement, writeBatch } from "./write-batch.ts";

/**
 * One attempt's outcome for one recipient; the same text for every outcome, so
 * it is built once. A deferral leaves a recipient the operator held or
 * cancelled while it was being sent as it is: it is not revived.
 */
const RECORD_OUTCOME = `UPDATE recipients SET
    state = CASE WHEN ?1 = 'deferred' AND state NOT IN ('queued', 'deferred') THEN state ELSE ?1 END,
    attempts = attempts + ?, last_reply = ?, lease_owner = NULL, next_attempt_at = ?, turn_at = NULL,
    updated_at = ?,
    last_mta = COALESCE(?, last_mta),
    dsn_pending = CASE WHEN ? THEN ? ELSE dsn_pending END,
    delay_notified_at = CASE WHEN ? THEN ? ELSE delay_notified_at END,
    greylisted_at = CASE WHEN ? THEN COALESCE(greylisted_at, ?) ELSE greylisted_at END
  WHERE id = ?`;

/** What a claim returns of each recipient it leases. */
const CLAIMED = `id, message_id, address, domain, lane, attempts, dsn_notify, dsn_orcpt, delay_notified_at,
  greylisted_at, turn_at`;

/**
 * Lease one lane's due recipients, oldest due first, up to a limit; the
 * partial index recipients_due (lane, next_attempt_at) finds them in order.
 * Exported for the test that reads its query plan.
 */
export const CLAIM_LANE = `UPDATE recipients SET lease_owner = ?, next_attempt_at = ?
  WHERE id IN (SELECT id FROM recipients
               WHERE state IN ('queued', 'deferred') AND lane = ? AND next_attempt_at <= ?
               ORDER BY next_attempt_at LIMIT ?)
  RETURNING ${CLAIMED}`;

const EVENT_OF_STATE: Record<Outcome["state"], EventType> = {
  delivered: "delivered",
  deferred: "deferred",
  bounced: "bounced",
  expired: "expired",
};

/**
 * The queue (src/queue/ is the only module that writes SQL): acceptance,
 * claims, outcomes and the message as delivery loads it; every state change
 * writes its event in the same batch. Its other concerns are its members,
 * each over the same database.
 */
/** A message on its way into the queue, under the id it gets. */
type Acceptance = { readonly id: string; readonly message: NewMessage };

/**
 * RELAY_DURABILITY=replicated (src/fleet/replication.ts): the shared server
 * holds each group of acceptances before the node's own commit.
 */
export interface ReplicationHook {
  hold(items: readonly Acceptance[]): Promise<void>;
  /** The node's own commit failed after `hold`: the server forgets them. */
  release(ids: readonly string[]): Promise<void>;
}

export interface QueueStoreOptions {
  /** Told the size and time of each commit of acceptances (metrics). */
  readonly enqueueMeter?: CommitMeter;
  /** Where the suppressions outcomes call for go: in place on a node alone, through the outbox in a fleet. */
  readonly sharedWrites?: SharedWrites;
  readonly replication?: ReplicationHook;
}

export class QueueStore {
  private readonly enqueues: GroupCommit<Acceptance>;
  /** Where the suppressions outcomes call for go: in place on a node alone, through the outbox in a fleet. */
  private readonly sharedWrites: SharedWrites;
  /** The operator's hold, release, retry and cancel (src/queue/queue-control.ts). */
  readonly control: QueueControl;
  /** Messages' bytes, in the spool or the row (src/queue/message-bodies.ts). */
  readonly bodies: MessageBodies;
  /** The DSNs owed, for the DSN sweeper (src/queue/dsn-store.ts). */
  readonly dsns: DsnStore;
  /** Bounces and complaints after delivery (src/queue/feedback-store.ts). */
  readonly feedback: FeedbackStore;
  /** The queue by recipient domain: backlog, counts, due now (src/queue/queue-by-domain.ts). */
  readonly byDomain: QueueByDomain;
  /** The event log's readers' queries (src/queue/event-log.ts). */
  readonly events: EventLog;
  /** Deleting finished messages past RELAY_RETENTION (src/queue/retention.ts). */
  readonly retention: Retention;

  constructor(
    private readonly database: Database,
    /** Where bodies go; none with a remote database (src/queue/database.ts says why). */
    spool: BodySpool | undefined,
    private readonly clock: Clock,
    private readonly nodeId: string,
    /**
     * RELAY_SUPPRESS_BOUNCE_CATEGORIES: a hard bounce recorded with one of
     * these categories puts its address on the global suppression list in
     * the same transaction (applied here, where outcomes are written, so no
     * later message can be accepted for it once the bounce is on disk).
     */
    private readonly suppressBounceCategories: readonly string[] = [],
    options: QueueStoreOptions = {},
  ) {
    this.sharedWrites = options.sharedWrites ?? inPlace;
    this.bodies = new MessageBodies(database, spool, clock);
    this.enqueues = new GroupCommit(
      (items) => this.commitAcceptances(items, options.replication),
      undefined,
      options.enqueueMeter,
    );
    this.control = new QueueControl(database, clock);
    this.dsns = new DsnStore(database, this.bodies, clock);
    this.feedback = new FeedbackStore(database, clock, suppressBounceCategories, this.sharedWrites);
    this.byDomain = new QueueByDomain(database, clock);
    this.events = new EventLog(database);
    this.retention = new Retention(database);
  }

  /**
   * One group commit of acceptances. Replicated, the shared server holds the
   * messages first (but adopted ones, which it holds already): a node that
   * dies after its own commit has nothing the fleet cannot deliver. When the
   * node's commit fails after that, the server lets them go again.
   */
  private async commitAcceptances(items: readonly Acceptance[], replication?: ReplicationHook): Promise<void> {
    const held = replication ? items.filter((i) => !i.message.adoptedFrom) : [];
    if (held.length > 0) await replication!.hold(held);
    try {
      await this.bodies.writeMessages(items);
    } catch (error) {
      if (held.length > 0) await replication!.release(held.map((i) => i.id)).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Durably store a message and its recipients; resolves after the commit
   * that carries it. `id` is one newId gave already (a content scanner was
   * told it), or a new one.
   */
  async enqueue(message: NewMessage, id = newId(this.clock.now())): Promise<string> {
    await this.enqueues.submit({ id, message });
    return id;
  }

  /** Store a message another node accepted and this one adopted (`adoptedFrom` set), under its own id. */
  async adopt(id: string, message: NewMessage & { readonly adoptedFrom: string }): Promise<void> {
    await this.enqueues.submit({ id, message });
  }

  /**
   * Lease up to `limit` due recipients, transactional ones first (src/core/lane.ts):
   * a transactional recipient due now is claimed before any bulk one, however
   * many bulk ones fell due earlier; at most `bulkLimit` bulk ones. Each lane is
   * one indexed query (CLAIM_LANE), so claiming never walks a bulk backlog. The
   * lease is the due time itself: claimed rows move to now + leaseMs, so the due
   * index never has to skip them.
   */
  async claimDue(limit: number, leaseMs: number, bulkLimit = limit): Promise<Claim[]> {
    const now = this.clock.now();
    const rows: Row[] = [];
    for (const lane of lanes) {
      const room = Math.min(limit - rows.length, lane === "bulk" ? bulkLimit : limit);
      if (room <= 0) continue;
      const claimed = await this.database.client.execute({
        sql: CLAIM_LANE,
        args: [this.nodeId, now + leaseMs, lane, now, room],
      });
      rows.push(...claimed.rows);
    }
    return this.claimsOf(rows);
  }

  /**
   * Lease up to `limit` recipients in the queue (held ones too) that no one
   * is delivering now (not leased, or the lease ran out), due or not: for an
   * operator's bounce. `at` picks them: every one at these domains, or one
   * message's, or one recipient's of it.
   */
  async claimForBounce(at: RecipientSelector, limit: number, leaseMs: number): Promise<Claim[]> {
    const now = this.clock.now();
    const where = selectorSql(at);
    if (where === undefined) return [];
    const result = await this.database.client.execute({
      sql: `UPDATE recipients SET lease_owner = ?, next_attempt_at = ?
            WHERE id IN (SELECT id FROM recipients WHERE ${where.sql} AND ${IN_QUEUE}
                           AND (lease_owner IS NULL OR next_attempt_at <= ?) LIMIT ?)
            RETURNING ${CLAIMED}`,
      args: [this.nodeId, now + leaseMs, ...where.args, now, limit],
    });
    return this.claimsOf(result.rows);
  }

  /** The claims of the rows a claim leased, each with its message's envelope. */
  private async claimsOf(rows: readonly Row[]): Promise<Claim[]> {
    if (rows.length === 0) return [];
    const ids = [...new Set(rows.map((r) => String(r.message_id)))];
    const envelopes = (
      await this.database.client.execute({
        sql: `SELECT id, mail_from, return_path_domain, created_at, tags, metadata, tls_tag FROM messages
              WHERE id IN (${ids.map(() => "?").join(", ")})`,
        args: ids,
      })
    ).rows.map((row) => ({
      id: String(row.id),
      mailFrom: String(row.mail_from),
      returnPathDomain: row.return_path_domain === null ? null : String(row.return_path_domain),
      createdAt: Number(row.created_at),
      tags: row.tags === null ? null : (JSON.parse(String(row.tags)) as string[]),
      metadata: row.metadata === null ? null : (JSON.parse(String(row.metadata)) as Record<string, unknown>),
      tlsTag: row.tls_tag === null ? undefined : (String(row.tls_tag) as TlsTag),
    }));
    const byId = new Map(envelopes.map((e) => [e.id, e]));
    return rows.map((r) => {
      const envelope = byId.get(String(r.message_id))!;
      return {
        recipientId: Number(r.id),
        messageId: String(r.message_id),
        address: String(r.address),
        domain: String(r.domain),
        lane: String(r.lane) as Lane,
        attempts: Number(r.attempts),
        dsnNotify: r.dsn_notify === null ? undefined : String(r.dsn_notify),
        dsnOrcpt: r.dsn_orcpt === null ? undefined : String(r.dsn_orcpt),
        delayNotifiedAt: r.delay_notified_at === null || r.delay_notified_at === undefined
          ? undefined
          : Number(r.delay_notified_at),
        greylistedAt: r.greylisted_at === null || r.greylisted_at === undefined ? undefined : Number(r.greylisted_at),
        ...(r.turn_at === null || r.turn_at === undefined ? {} : { turnAt: Number(r.turn_at) }),
        mailFrom: envelope.mailFrom,
        ...(envelope.returnPathDomain === null ? {} : { returnPathDomain: envelope.returnPathDomain }),
        messageCreatedAt: envelope.createdAt,
        ...(envelope.tlsTag === undefined ? {} : { tlsTag: envelope.tlsTag }),
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

  /** Of these recipients, those still pending (not final, not held). */
  async pendingAmong(recipientIds: readonly number[]): Promise<Set<number>> {
    const pending = new Set<number>();
    for (const ids of chunks([...new Set(recipientIds)])) {
      const result = await this.database.client.execute({
        sql: `SELECT id FROM recipients WHERE id IN (${marks(ids.length)}) AND ${PENDING}`,
        args: ids,
      });
      for (const row of result.rows) pending.add(Number(row.id));
    }
    return pending;
  }

  /**
   * Give back leased recipients untried, due at `at`: no attempt counted, no
   * event, the state unchanged. A suspended destination holds what is routed
   * to it this way until its suspension ends.
   */
  async hold(recipientIds: readonly number[], at: number): Promise<void> {
    await writeBatch(
      this.database,
      chunks(recipientIds, ROWS_PER_STATEMENT).map((ids) => ({
        sql: `UPDATE recipients SET lease_owner = NULL, next_attempt_at = ?
              WHERE id IN (${ids.map(() => "?").join(", ")}) AND lease_owner = ? AND ${PENDING}`,
        args: [at, ...ids, this.nodeId],
      })),
    );
  }

  /**
   * Recipients held until `from` (see hold) are due at `to` instead; returns
   * how many. The hold time finds them (a seek in recipients_due), whatever
   * their domain: a suspension's end is its own (OperatorCommands.suspend).
   */
  async moveHeld(from: number, to: number): Promise<number> {
    const result = await this.database.client.execute({
      sql: `UPDATE recipients SET next_attempt_at = ?
            WHERE lane IN ('transactional', 'bulk') AND next_attempt_at = ? AND ${PENDING} AND lease_owner IS NULL`,
      args: [to, from],
    });
    return result.rowsAffected;
  }

  /** A page of the queue listing (src/queue/queue-listing.ts). */
  listQueue(query: QueueQuery): Promise<QueuePage> {
    return listQueue(this.database.client, query, this.clock.now());
  }

  /**
   * The earliest due time of any pending recipient in `of` (default: every
   * lane), to sleep until then. One MIN per lane, each a single step into the
   * index recipients_due.
   */
  async nextDueAt(of: readonly Lane[] = lanes): Promise<number | undefined> {
    const result = await this.database.client.execute({
      sql: `SELECT MIN(due) AS due FROM (${
        of.map(() =>
          "SELECT MIN(next_attempt_at) AS due FROM recipients WHERE state IN ('queued', 'deferred') AND lane = ?"
        )
          .join(" UNION ALL ")
      })`,
      args: [...of],
    });
    const due = result.rows[0]?.due;
    return due === null || due === undefined ? undefined : Number(due);
  }

  /** What delivery needs of a message: its sender, bytes and DSN options. */
  async loadMessage(id: string, retry = true): Promise<StoredMessage | undefined> {
    const result = await this.database.client.execute({
      sql:
        "SELECT id, mail_from, body, spool_segment, spool_offset, size, dsn_ret, dsn_envid FROM messages WHERE id = ?",
      args: [id],
    });
    const row = result.rows[0];
    if (!row) return undefined;
    let body: Uint8Array;
    try {
      body = await this.bodies.read({
        body: row.body,
        spoolSegment: row.spool_segment,
        spoolOffset: row.spool_offset,
        size: row.size,
      });
    } catch (error) {
      if (retry && isMissingFile(error)) return this.loadMessage(id, false);
      throw error;
    }
    return {
      id: String(row.id),
      mailFrom: String(row.mail_from),
      body,
      dsnRet: (row.dsn_ret as StoredMessage["dsnRet"]) ?? null,
      dsnEnvid: row.dsn_envid === null ? null : String(row.dsn_envid),
    };
  }

  /** Record attempt outcomes, their events, the suppressions they add and the bodies they finish, in one transaction. */
  async record(outcomes: readonly Outcome[]): Promise<void> {
    const now = this.clock.now();
    const statements: Statement[] = outcomes.map((o) => {
      // A deferral keeps what is pending unless it calls for a delay warning itself.
      const setsDsn = o.state !== "deferred" || o.dsn !== undefined;
      return {
        sql: RECORD_OUTCOME,
        args: [
          o.state,
          o.counted === false ? 0 : 1,
          o.reply,
          o.state === "deferred" ? (o.nextAttemptAt ?? now) : now,
          now,
          o.remoteMta ?? null,
          setsDsn ? 1 : 0,
          o.dsn ?? null,
          o.dsn === "delay" ? 1 : 0,
          now,
          o.greylisted ? 1 : 0,
          now,
          o.recipientId,
        ],
      };
    });
    const eventRows = outcomes.flatMap((o) => [
      [now, EVENT_OF_STATE[o.state], o.messageId, o.address, JSON.stringify(o.event)],
      ...(o.followingEvents ?? []).map((e) => [now, e.type, o.messageId, o.address, JSON.stringify(e.data)]),
    ]);
    statements.push(...insertRows("events", EVENT_COLUMNS, eventRows));
    statements.push(...this.sharedWrites(suppressionUpsert(outcomes.flatMap((o) => this.suppressionFor(o)), now), now));
    statements.push(...dropFinishedBodies(outcomes.filter((o) => o.state !== "deferred").map((o) => o.messageId)));
    // The destination holds what these outcomes record: until they commit, a crash would send it again.
    if (this.database.urgentBatch) await this.database.urgentBatch(statements.map(rawStatement));
    else await writeBatch(this.database, statements);
  }

  /** The global suppression a hard bounce of a configured category calls for. */
  private suppressionFor(o: Outcome): NewSuppression[] {
    return o.state === "bounced"
      ? hardBounceSuppression(this.suppressBounceCategories, o.messageId, o.address, o.event)
      : [];
  }

  /**
   * Hand leased recipients back until their turn (pacing): no attempt, no
   * event, the state stays; a recipient no longer ours is left alone. One
   * statement for the batch, each row found by its id ("+" keeps SQLite from
   * walking the lease index instead, which holds every recipient in flight).
   */
  async postpone(postponements: readonly Postponement[]): Promise<void> {
    const now = this.clock.now();
    await writeBatch(this.database, [{
      sql: `UPDATE recipients SET lease_owner = NULL, next_attempt_at = p.at, turn_at = p.at, updated_at = ?
            FROM (SELECT value ->> 0 AS id, value ->> 1 AS at FROM json_each(?)) AS p
            WHERE recipients.id = p.id AND +recipients.lease_owner = ?`,
      args: [now, JSON.stringify(postponements.map((p) => [p.recipientId, p.at])), this.nodeId],
    }]);
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
        tlsTag: messages.tlsTag,
      })
      .from(messages)
      .where(eq(messages.id, id));
    if (!message) return undefined;
    const rcpts = await db.select().from(recipients).where(eq(recipients.messageId, id)).orderBy(asc(recipients.id));
    const log = await db.select().from(events).where(eq(events.messageId, id)).orderBy(asc(events.id));
    return { message, recipients: rcpts, events: log };
  }

  /**
   * Readiness: whether the database answers a query. A failure is the answer
   * (false), not logged: a load balancer asks every few seconds.
   */
  async answers(): Promise<boolean> {
    return this.database.client.execute("SELECT 1").then(
      () => true,
      () => false,
    );
  }
}
