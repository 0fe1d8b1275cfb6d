import { and, asc, eq, inArray, sql } from "drizzle-orm";
import type { Clock } from "../core/clock.ts";
import { newId } from "../core/id.ts";
import type { Database } from "./database.ts";
import { dropFinishedBodies } from "./finished.ts";
import { isMissingFile, type MessageBodies } from "./message-bodies.ts";
import { EVENT_COLUMNS } from "./message-rows.ts";
import { chunks, ROWS_PER_STATEMENT } from "./queue-states.ts";
import { insertRows } from "./raw-insert.ts";
import type { PendingDsn, PendingDsnRecipient, SettledDsn } from "./records.ts";
import { type DsnKind, messages, recipients } from "./schema.ts";
import { type Statement, writeBatch } from "./write-batch.ts";

/**
 * The messages owed a DSN now (args: now, now, limit); exported for
 * scripts/bench-prefill.ts, which reads its plan on a deep queue.
 */
export const PENDING_DSN_MESSAGES = `SELECT DISTINCT message_id FROM recipients AS p
  WHERE p.dsn_pending IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM recipients AS o
                    WHERE o.message_id = p.message_id AND o.state IN ('queued', 'deferred')
                      AND ((o.lease_owner IS NOT NULL AND o.next_attempt_at > ?)
                           OR (o.state = 'queued' AND o.attempts = 0 AND o.lease_owner IS NULL AND o.next_attempt_at <= ?)))
  LIMIT ?`;

/**
 * The DSNs owed (RFC 3464): the marks outcomes leave on recipients
 * (dsn_pending), read by the DSN sweeper, and settled as the DSNs it makes
 * are enqueued.
 */
export class DsnStore {
  constructor(
    private readonly database: Database,
    private readonly bodies: MessageBodies,
    private readonly clock: Clock,
  ) {}

  /**
   * Messages with pending DSN marks that can be reported now, oldest first:
   * none of their recipients is leased (in flight, lease not run out) or due
   * for a first attempt not yet claimed, so one DSN can group every recipient
   * whose fate is known. The outer scan runs on the partial index
   * recipients_dsn_pending, so it costs nothing while no DSN is owed.
   */
  async pending(limit: number): Promise<PendingDsn[]> {
    const now = this.clock.now();
    const ready = await this.database.client.execute({
      sql: PENDING_DSN_MESSAGES,
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
            body = await this.bodies.read(m);
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
  async settle(settled: readonly SettledDsn[]): Promise<string[]> {
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
    if (created.length > 0) await this.bodies.writeMessages(created, statements);
    else await writeBatch(this.database, statements);
    return created.map((c) => c.id);
  }
}
