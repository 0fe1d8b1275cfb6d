import type { PendingCount } from "./records.ts";
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { InArgs, InStatement, Row } from "@libsql/client";
import type { Clock } from "../core/clock.ts";
import { type Lane, lanes } from "../core/lane.ts";
import type { TlsTag } from "../core/tls-tag.ts";
import { firstIdAt, newId } from "../core/id.ts";
import type { Database } from "./database.ts";
import { type CommitMeter, GroupCommit } from "./group-commit.ts";
import { EVENT_COLUMNS, messageInserts } from "./message-rows.ts";
import { type EventFilter, type EventRecord, readEvents } from "./event-log.ts";
import { insertRows } from "./raw-insert.ts";
import { backlogByDomain, dueNowAtDomains } from "./queue-by-domain.ts";
import { chunks, IN_QUEUE, PENDING, ROWS_PER_STATEMENT } from "./queue-states.ts";
import { type RecipientSelector, selectorSql } from "./recipient-selector.ts";
import { dropFinishedBodies, FINISHED, STILL_OPEN } from "./finished.ts";
import { QueueControl } from "./queue-control.ts";
import { listQueue, type QueuePage, type QueueQuery } from "./queue-listing.ts";
import type {
  Claim,
  DomainBacklog,
  NewMessage,
  Outcome,
  PendingDsn,
  PendingDsnRecipient,
  Postponement,
  SettledDsn,
  StoredMessage,
} from "./records.ts";
import { type DsnKind, events, type EventType, messages, recipients, type RecipientState } from "./schema.ts";
import type { BodyRef, BodySpool } from "./spool.ts";
import { type NewSuppression, suppressionUpsert } from "./suppressions.ts";

type Statement = BatchItem<"sqlite"> | InStatement;

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

/**
 * Every webhook endpoint has taken the message's events (its cursor is past
 * them; none registered: true), so that retention never deletes an event
 * before it was sent. Cursors only move forward, so what holds here still
 * holds when the purge's transaction runs.
 */
const TAKEN_BY_WEBHOOKS = `NOT EXISTS (SELECT 1 FROM events AS e WHERE e.message_id = messages.id
  AND e.id > (SELECT min(cursor) FROM webhooks))`;

function rawStatement(s: Statement): InStatement {
  if (typeof s === "object" && "toSQL" in s && typeof s.toSQL === "function") {
    const { sql: text, params } = s.toSQL();
    return { sql: text, args: params as InArgs };
  }
  return s as InStatement;
}

/** Where a message row says its body is. */
interface BodyColumns {
  readonly body: unknown;
  readonly spoolSegment: unknown;
  readonly spoolOffset: unknown;
  readonly size: unknown;
}

/** A missing spool segment: the body moved (the collector compacts segments) after its row was read. */
const isMissingFile = (error: unknown) => (error as { code?: string }).code === "ENOENT";

const EVENT_OF_STATE: Record<Outcome["state"], EventType> = {
  delivered: "delivered",
  deferred: "deferred",
  bounced: "bounced",
  expired: "expired",
};

/** The queue: the only module that writes SQL. Every state change writes its event in the same batch. */
export class QueueStore {
  private readonly enqueues: GroupCommit<{ id: string; message: NewMessage }>;
  /** The operator's hold, release, retry and cancel (src/queue/queue-control.ts). */
  readonly control: QueueControl;

  constructor(
    private readonly database: Database,
    /** Where bodies go; none with a remote database (src/queue/database.ts says why). */
    private readonly spool: BodySpool | undefined,
    private readonly clock: Clock,
    private readonly nodeId: string,
    /**
     * RELAY_SUPPRESS_BOUNCE_CATEGORIES: a hard bounce recorded with one of
     * these categories puts its address on the global suppression list in
     * the same transaction (applied here, where outcomes are written, so no
     * later message can be accepted for it once the bounce is on disk).
     */
    private readonly suppressBounceCategories: readonly string[] = [],
    /** Told the size and time of each commit of acceptances (metrics). */
    enqueueMeter?: CommitMeter,
  ) {
    this.enqueues = new GroupCommit((items) => this.writeMessages(items), undefined, enqueueMeter);
    this.control = new QueueControl(database, clock);
  }

  /** Durably store a message and its recipients; resolves after the commit that carries it. */
  async enqueue(message: NewMessage): Promise<string> {
    const id = newId(this.clock.now());
    await this.enqueues.submit({ id, message });
    return id;
  }

  /**
   * New messages: their bodies into the spool first, then their rows (with
   * `before` in the same transaction). A crash between the two leaves bytes
   * no row refers to, which the spool collector removes.
   */
  private async writeMessages(
    items: readonly { id: string; message: NewMessage }[],
    before: readonly Statement[] = [],
  ): Promise<void> {
    // A message whose every recipient is suppressed is finished as it is stored: its body is not kept.
    const allSuppressed = (m: NewMessage) => m.recipients.length > 0 && m.recipients.every((r) => r.suppressed);
    const finished = dropFinishedBodies(items.filter(({ message }) => allSuppressed(message)).map(({ id }) => id));
    if (!this.spool) {
      return this.writeBatch([...before, ...messageInserts(items, undefined, this.clock.now()), ...finished]);
    }
    const bodies = items.map((item) => item.message.body);
    await this.writeBodiesThen(bodies, (refs) => [
      ...before,
      ...messageInserts(items, refs, this.clock.now()),
      ...finished,
    ]);
  }

  /**
   * Place bodies in the spool and commit the statements that refer to them,
   * written first. The bodies move to the database worker: the statements
   * are made before, and nothing reads the bodies after.
   */
  private async writeBodiesThen(
    bodies: readonly Uint8Array[],
    statements: (refs: readonly BodyRef[]) => Statement[],
  ): Promise<void> {
    const spool = this.spool!;
    const { refs, write } = spool.place(bodies);
    try {
      await this.database.batchAfterWrite!(write, statements(refs).map(rawStatement), "write");
    } catch (error) {
      spool.failed(refs);
      throw error;
    } finally {
      spool.settle(refs);
    }
  }

  /** A message's bytes: from the spool, or from the row for messages stored before it. */
  private async bodyOf(row: BodyColumns): Promise<Uint8Array> {
    if (row.spoolSegment === null || row.spoolSegment === undefined) {
      const body = row.body as ArrayBuffer | Uint8Array;
      return body instanceof Uint8Array ? body : new Uint8Array(body);
    }
    if (!this.spool) {
      throw new Error("the message's body is in a spool, and this node has none: it uses a remote database");
    }
    return this.spool.read({
      segment: Number(row.spoolSegment),
      offset: Number(row.spoolOffset),
      length: Number(row.size),
    });
  }

  /** One transaction for query-builder statements and raw ones alike. */
  private async writeBatch(statements: readonly Statement[]): Promise<void> {
    if (statements.length === 0) return;
    await this.database.client.batch(statements.map(rawStatement), "write");
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

  /**
   * Give back leased recipients untried, due at `at`: no attempt counted, no
   * event, the state unchanged. A suspended destination holds what is routed
   * to it this way until its suspension ends.
   */
  async hold(recipientIds: readonly number[], at: number): Promise<void> {
    await this.writeBatch(
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

  /** Make the deferred recipients at these domains due now (src/queue/queue-by-domain.ts); returns how many. */
  dueNowAt(domains: readonly string[]): Promise<number> {
    return dueNowAtDomains(this.database.client, this.clock.now(), domains);
  }

  /** A page of the queue listing (src/queue/queue-listing.ts). */
  listQueue(query: QueueQuery): Promise<QueuePage> {
    return listQueue(this.database.client, query, this.clock.now());
  }

  /** The queue by recipient domain, each count at most `cap` (src/queue/queue-by-domain.ts). */
  pendingByDomain(
    which: { readonly domains: readonly string[] } | { readonly limit: number },
    cap: number,
  ): Promise<DomainBacklog[]> {
    return backlogByDomain(this.database.client, which, cap);
  }

  /**
   * Every domain's recipients in the queue, queued, deferred (in flight
   * included) and held, in one grouped count over the index
   * recipients_in_queue alone: no table row is read, but every queued
   * recipient's index entry is, so callers that ask often cache the answer
   * (metrics do).
   */
  async pendingCounts(): Promise<PendingCount[]> {
    const result = await this.database.client.execute(
      `SELECT domain, state, count(*) AS n FROM recipients WHERE ${IN_QUEUE} GROUP BY domain, state`,
    );
    const byDomain = new Map<string, { domain: string; queued: number; deferred: number; held: number }>();
    for (const row of result.rows) {
      const domain = String(row.domain);
      let counts = byDomain.get(domain);
      if (!counts) byDomain.set(domain, counts = { domain, queued: 0, deferred: 0, held: 0 });
      counts[row.state as "queued" | "deferred" | "held"] = Number(row.n);
    }
    return [...byDomain.values()];
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
      body = await this.bodyOf({
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
    statements.push(...suppressionUpsert(outcomes.flatMap((o) => this.suppressionFor(o)), now));
    statements.push(...dropFinishedBodies(outcomes.filter((o) => o.state !== "deferred").map((o) => o.messageId)));
    await this.writeBatch(statements);
  }

  /** The global suppression a hard bounce of a configured category calls for. */
  private suppressionFor(o: Outcome): NewSuppression[] {
    return o.state === "bounced" ? this.hardBounceSuppression(o.messageId, o.address, o.event) : [];
  }

  private hardBounceSuppression(messageId: string, address: string, event: Record<string, unknown>): NewSuppression[] {
    const hard = event.bounce_type === "hard";
    if (!hard || !this.suppressBounceCategories.includes(String(event.category))) return [];
    return [{ address, scope: { kind: "global" }, reason: "hard-bounce", source: { event: "bounced", messageId } }];
  }

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
  async recordFeedback(event: {
    type: "bounced" | "complained";
    messageId: string;
    address: string;
    data: Record<string, unknown>;
  }): Promise<void> {
    const now = this.clock.now();
    const row = [now, event.type, event.messageId, event.address, JSON.stringify(event.data)];
    const suppressions: NewSuppression[] = event.type === "bounced"
      ? this.hardBounceSuppression(event.messageId, event.address, event.data)
      : event.data.feedback_type === "not-spam"
      ? []
      : [{
        address: event.address,
        scope: { kind: "global" },
        reason: "complaint",
        source: { event: "complained", messageId: event.messageId },
      }];
    await this.writeBatch([...insertRows("events", EVENT_COLUMNS, [row]), ...suppressionUpsert(suppressions, now)]);
  }

  /**
   * Hand leased recipients back until their turn (pacing): no attempt, no
   * event, the state stays; a recipient no longer ours is left alone. One
   * statement for the batch, each row found by its id ("+" keeps SQLite from
   * walking the lease index instead, which holds every recipient in flight).
   */
  async postpone(postponements: readonly Postponement[]): Promise<void> {
    const now = this.clock.now();
    await this.writeBatch([{
      sql: `UPDATE recipients SET lease_owner = NULL, next_attempt_at = p.at, turn_at = p.at, updated_at = ?
            FROM (SELECT value ->> 0 AS id, value ->> 1 AS at FROM json_each(?)) AS p
            WHERE recipients.id = p.id AND +recipients.lease_owner = ?`,
      args: [now, JSON.stringify(postponements.map((p) => [p.recipientId, p.at])), this.nodeId],
    }]);
  }

  /**
   * Messages with pending DSN marks that can be reported now, oldest first:
   * none of their recipients is leased (in flight, lease not run out) or due
   * for a first attempt not yet claimed, so one DSN can group every recipient
   * whose fate is known. The outer scan runs on the partial index
   * recipients_dsn_pending, so it costs nothing while no DSN is owed.
   */
  async pendingDsns(limit: number): Promise<PendingDsn[]> {
    const now = this.clock.now();
    const ready = await this.database.client.execute({
      sql: `SELECT DISTINCT message_id FROM recipients AS p
            WHERE p.dsn_pending IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM recipients AS o
                              WHERE o.message_id = p.message_id AND o.state IN ('queued', 'deferred')
                                AND ((o.lease_owner IS NOT NULL AND o.next_attempt_at > ?)
                                     OR (o.state = 'queued' AND o.attempts = 0 AND o.lease_owner IS NULL AND o.next_attempt_at <= ?)))
            LIMIT ?`,
      args: [now, now, limit],
    });
    const ids = ready.rows.map((r) => String(r.message_id));
    if (ids.length === 0) return [];
    const { db } = this.database;
    const [bodies, marked] = await Promise.all([
      db
        .select({
          id: messages.id,
          mailFrom: messages.mailFrom,
          createdAt: messages.createdAt,
          body: messages.body,
          spoolSegment: messages.spoolSegment,
          spoolOffset: messages.spoolOffset,
          size: messages.size,
          dsnRet: messages.dsnRet,
          dsnEnvid: messages.dsnEnvid,
          tlsTag: messages.tlsTag,
        })
        .from(messages)
        .where(inArray(messages.id, ids)),
      db
        .select({
          id: recipients.id,
          messageId: recipients.messageId,
          address: recipients.address,
          kind: recipients.dsnPending,
          state: recipients.state,
          lastReply: recipients.lastReply,
          lastMta: recipients.lastMta,
          dsnOrcpt: recipients.dsnOrcpt,
          updatedAt: recipients.updatedAt,
        })
        .from(recipients)
        .where(and(inArray(recipients.messageId, ids), sql`${recipients.dsnPending} IS NOT NULL`))
        .orderBy(asc(recipients.id)),
    ]);
    const byMessage = new Map<string, PendingDsnRecipient[]>();
    for (const r of marked) {
      if (r.kind === null) continue;
      const list = byMessage.get(r.messageId) ?? [];
      list.push({
        recipientId: r.id,
        address: r.address,
        kind: r.kind,
        state: r.state,
        lastReply: r.lastReply ?? undefined,
        lastMta: r.lastMta ?? undefined,
        dsnOrcpt: r.dsnOrcpt ?? undefined,
        updatedAt: r.updatedAt,
      });
      byMessage.set(r.messageId, list);
    }
    const found = await Promise.all(
      bodies
        .filter((m) => byMessage.has(m.id))
        .map(async (m): Promise<PendingDsn[]> => {
          let body: Uint8Array;
          try {
            body = await this.bodyOf(m);
          } catch (error) {
            if (isMissingFile(error)) return []; // moved by the collector meanwhile: the next sweep finds it
            throw error;
          }
          const { id: messageId, mailFrom, createdAt, dsnRet, dsnEnvid, tlsTag } = m;
          return [{ messageId, mailFrom, createdAt, body, dsnRet, dsnEnvid, tlsTag, recipients: byMessage.get(m.id)! }];
        }),
    );
    return found.flat();
  }

  /**
   * Enqueue the DSNs and clear the marks they answer, all in one transaction:
   * a crash leaves either both (the DSN is queued, nothing owed) or neither
   * (the marks are still there and the next sweep reports them), so a DSN is
   * never sent twice nor lost. A mark is cleared only if it is still the one
   * reported: one changed meanwhile (a delay warning overtaken by the failure)
   * stays for the next sweep. Returns the new messages' ids.
   */
  async settleDsns(settled: readonly SettledDsn[]): Promise<string[]> {
    const { db } = this.database;
    const now = this.clock.now();
    const statements: Statement[] = [];
    for (const s of settled) {
      const byKind = new Map<DsnKind, number[]>();
      for (const r of s.recipients) byKind.set(r.kind, [...(byKind.get(r.kind) ?? []), r.recipientId]);
      for (const [kind, ids] of byKind) {
        for (const chunk of chunks(ids, ROWS_PER_STATEMENT)) {
          statements.push(
            db
              .update(recipients)
              .set({ dsnPending: null })
              .where(and(inArray(recipients.id, chunk), eq(recipients.dsnPending, kind))),
          );
        }
      }
    }
    statements.push(...dropFinishedBodies(settled.map((s) => s.messageId)));
    const created = settled.flatMap((s) => (s.dsn ? [{ id: newId(now), message: s.dsn, settled: s }] : []));
    const reported = created.flatMap(({ id, message, settled: s }) =>
      s.recipients.map((r) => {
        const data = { dsn_message_id: id, kind: r.kind, to: message.recipients[0]?.address };
        return [now, "dsn_sent", s.messageId, r.address, JSON.stringify(data)];
      })
    );
    statements.push(...insertRows("events", EVENT_COLUMNS, reported));
    if (created.length > 0) await this.writeMessages(created, statements);
    else await this.writeBatch(statements);
    return created.map((c) => c.id);
  }

  /**
   * Delete up to `limit` finished messages received before `before` (every
   * recipient final, no DSN owed) with their recipients and events, in one
   * transaction; returns how many. Ids sort by time, so the candidates come
   * from the primary key, not a scan.
   */
  async purgeFinished(before: number, limit: number): Promise<number> {
    const found = await this.database.client.execute({
      sql: `SELECT id FROM messages WHERE id < ? AND ${FINISHED} AND ${TAKEN_BY_WEBHOOKS} ORDER BY id LIMIT ?`,
      args: [firstIdAt(before), limit],
    });
    const ids = found.rows.map((r) => String(r.id));
    if (ids.length === 0) return 0;
    const list = ids.map(() => "?").join(", ");
    // Checked again inside the transaction: a message that came back to life meanwhile is kept whole.
    const live = `SELECT r.message_id FROM recipients AS r WHERE r.message_id IN (${list}) AND ${STILL_OPEN}`;
    await this.writeBatch([
      {
        sql: `DELETE FROM events WHERE message_id IN (${list}) AND message_id NOT IN (${live})`,
        args: [...ids, ...ids],
      },
      {
        sql: `DELETE FROM recipients WHERE message_id IN (${list}) AND message_id NOT IN (${live})`,
        args: [...ids, ...ids],
      },
      {
        sql:
          `DELETE FROM messages WHERE id IN (${list}) AND NOT EXISTS (SELECT 1 FROM recipients AS r WHERE r.message_id = messages.id)`,
        args: ids,
      },
    ]);
    return ids.length;
  }

  /** For each spool segment that rows still refer to: how many bodies and bytes (from the messages_spool index alone). */
  async spoolUsage(): Promise<Map<number, { bodies: number; bytes: number }>> {
    const result = await this.database.client.execute(
      "SELECT spool_segment, count(*) AS bodies, sum(size) AS bytes FROM messages WHERE spool_segment IS NOT NULL GROUP BY spool_segment",
    );
    return new Map(
      result.rows.map((r) => [Number(r.spool_segment), { bodies: Number(r.bodies), bytes: Number(r.bytes) }]),
    );
  }

  /**
   * Copy up to `limit` of the bodies still in `segment` to the active one and
   * point their rows there; returns how many were found. A row changed
   * meanwhile (its message finished) keeps its value and the copy is simply
   * never referred to.
   */
  async moveBodies(segment: number, limit: number): Promise<number> {
    const found = await this.database.client.execute({
      sql: "SELECT id, spool_offset, size FROM messages WHERE spool_segment = ? LIMIT ?",
      args: [segment, limit],
    });
    if (found.rows.length === 0) return 0;
    const from = found.rows.map((r) => ({
      id: String(r.id),
      segment,
      offset: Number(r.spool_offset),
      length: Number(r.size),
    }));
    const bodies = await Promise.all(from.map((ref) => this.spool!.read(ref)));
    await this.writeBodiesThen(bodies, (to) =>
      from.map((old, i) => ({
        sql:
          "UPDATE messages SET spool_segment = ?, spool_offset = ? WHERE id = ? AND spool_segment = ? AND spool_offset = ?",
        args: [to[i]!.segment, to[i]!.offset, old.id, old.segment, old.offset],
      })));
    return from.length;
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

  /** The id of the newest event, 0 when there is none: where a reader of new events starts. */
  async lastEventId(): Promise<number> {
    const [row] = await this.database.db.select({ id: sql<number | null>`max(${events.id})` }).from(events);
    return Number(row?.id ?? 0);
  }

  /** The event log after the cursor `after`, in id order, the events `filter` lets through. */
  listEvents(after: number, limit: number, filter: EventFilter = {}): Promise<EventRecord[]> {
    return readEvents(this.database, after, limit, filter);
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
