import type { Clock } from "../core/clock.ts";
import type { Database } from "./database.ts";
import { dropFinishedBodies } from "./finished.ts";
import { messageInserts } from "./message-rows.ts";
import type { NewMessage } from "./records.ts";
import type { BodyRef, BodySpool } from "./spool.ts";
import { rawStatement, type Statement, writeBatch } from "./write-batch.ts";

/** Where a message row says its body is. */
export interface BodyColumns {
  readonly body: unknown;
  readonly spoolSegment: unknown;
  readonly spoolOffset: unknown;
  readonly size: unknown;
}

/** A missing spool segment: the body moved (the collector compacts segments) after its row was read. */
export const isMissingFile = (error: unknown) => (error as { code?: string }).code === "ENOENT";

/**
 * Messages' bytes: written to the spool as their rows are (in the row with
 * a remote database), read back from wherever their row says they are, and
 * moved out of a segment the spool collector compacts.
 */
export class MessageBodies {
  constructor(
    private readonly database: Database,
    /** Where bodies go; none with a remote database (src/queue/database.ts says why). */
    private readonly spool: BodySpool | undefined,
    private readonly clock: Clock,
  ) {}

  /**
   * New messages: their bodies into the spool first, then their rows (with
   * `before` in the same transaction). A crash between the two leaves bytes
   * no row refers to, which the spool collector removes.
   */
  async writeMessages(
    items: readonly { id: string; message: NewMessage }[],
    before: readonly Statement[] = [],
  ): Promise<void> {
    // A message whose every recipient is suppressed is finished as it is stored: its body is not kept.
    const allSuppressed = (m: NewMessage) => m.recipients.length > 0 && m.recipients.every((r) => r.suppressed);
    const finished = dropFinishedBodies(items.filter(({ message }) => allSuppressed(message)).map(({ id }) => id));
    if (!this.spool) {
      return writeBatch(this.database, [...before, ...messageInserts(items, undefined, this.clock.now()), ...finished]);
    }
    const bodies = items.map((item) => item.message.body);
    await this.writeBodiesThen(bodies, (refs) => [
      ...before,
      ...messageInserts(items, refs, this.clock.now()),
      ...finished,
    ]);
  }

  /** A message's bytes: from the spool, or from the row for messages stored before it. */
  async read(row: BodyColumns): Promise<Uint8Array> {
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
}
