import type { InStatement, InValue } from "@libsql/client";
import type { Clock } from "../core/clock.ts";
import { errorText, type Logger } from "../core/log.ts";
import type { Database } from "../queue/database.ts";
import { IN_QUEUE } from "../queue/queue-states.ts";
import type { NewMessage, Outcome } from "../queue/records.ts";
import { throughOutbox } from "../queue/shared-writes.ts";
import type { QueueStore, ReplicationHook } from "../queue/store.ts";
import { writeBatch } from "../queue/write-batch.ts";
import type { NodeBeat, NodeRegistry } from "./node-registry.ts";
import type { SharedDatabase } from "./shared-database.ts";
import { sharedUnreachable } from "./unreachable.ts";

export interface ReplicationOptions {
  readonly shared: SharedDatabase;
  /** The node's own database: its queue, and its outbox. */
  readonly local: Database;
  readonly registry: NodeRegistry;
  readonly store: Pick<QueueStore, "adopt" | "control">;
  readonly nodeId: string;
  /** RELAY_NODE_DEAD_AFTER. */
  readonly deadAfterMs: number;
  /**
   * RELAY_MAX_QUEUE_TIME: how long a finished message's tombstone is kept. A
   * node away longer than that would expire its copy anyway.
   */
  readonly maxQueueTime: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** A clock that never jumps (performance.now), for the lease; tests give their own. */
  readonly monotonic?: () => number;
}

/** Messages one claim takes from a dead node: small, so that every live node gets a share. */
const ADOPT_BATCH = 20;
/** Messages whose ownership is asked at once when a node drops what others adopted. */
const OWNERSHIP_BATCH = 500;

const FINAL: ReadonlySet<Outcome["state"]> = new Set(["delivered", "bounced", "expired"]);

/**
 * RELAY_DURABILITY=replicated: the fleet's shared server holds every message
 * a node acknowledges until each of its recipients is done, and names the
 * node that delivers it (its owner).
 *
 * - Acceptance (`hold`): the messages are written to the server before the
 *   node's own commit, so a 250 or 202 means both have them.
 * - The lease: a node delivers only while its last heartbeat the server took
 *   is younger than half of RELAY_NODE_DEAD_AFTER. Other nodes adopt its mail
 *   only once it has been silent for all of RELAY_NODE_DEAD_AFTER, so a node
 *   cut off from the server has stopped sending long before anyone else starts.
 * - Fencing: each registration gives the node a new epoch, and every beat
 *   carries it. An adopter raises the silent node's epoch, so that node's next
 *   beat is refused: it stops, registers again, and first drops (cancels) what
 *   was adopted, so it sends none of it. Claims check that the owner is still
 *   silent, in the same statement, so a node that registered again keeps the
 *   rest. Done marks are written only while the writer owns the message.
 * - Done marks (`finished`): before outcomes are recorded, the recipients that
 *   are done are marked on the server, so an adopter sends only the others.
 */
export class Replication implements ReplicationHook {
  readonly name = "adopting the mail of silent nodes";
  readonly everyMs: number;
  #epoch: number | undefined;
  /** When the last beat the server took was sent (monotonic ms). */
  #beatAt: number | undefined;
  readonly #monotonic: () => number;

  constructor(private readonly options: ReplicationOptions) {
    this.#monotonic = options.monotonic ?? (() => performance.now());
    this.everyMs = Math.max(500, Math.floor(options.deadAfterMs / 4));
  }

  mayDeliver(): boolean {
    return this.#epoch !== undefined && this.#beatAt !== undefined &&
      this.#monotonic() - this.#beatAt < this.options.deadAfterMs / 2;
  }

  async hold(items: readonly { id: string; message: NewMessage }[]): Promise<void> {
    const { nodeId, clock, shared } = this.options;
    const now = clock.now();
    const statements: InStatement[] = [];
    for (const { id, message } of items) {
      if (message.recipients.every((r) => r.suppressed)) continue; // nothing to deliver
      const { body, ...envelope } = message;
      statements.push({
        sql: `INSERT OR REPLACE INTO replicated_messages (id, owner, accepted_by, message, body, accepted_at)
              VALUES (?, ?, ?, ?, ?, ?)`,
        args: [id, nodeId, nodeId, JSON.stringify(envelope), body, now],
      });
      for (const r of message.recipients.filter((r) => r.suppressed)) statements.push(doneMark(id, r.address, now));
    }
    if (statements.length > 0) await shared.client.batch(statements, "write");
  }

  async release(ids: readonly string[]): Promise<void> {
    const marks = ids.map(() => "?").join(", ");
    await this.options.shared.client.batch([
      {
        sql: `DELETE FROM replicated_messages WHERE id IN (${marks}) AND owner = ?`,
        args: [...ids, this.options.nodeId],
      },
      { sql: `DELETE FROM replicated_done WHERE message_id IN (${marks})`, args: [...ids] },
    ], "write");
  }

  /**
   * Mark the recipients these outcomes finish as done, and forget messages
   * with nothing left, on the server (#mark); the outcome is recorded
   * whatever becomes of the marks.
   */
  async finished(outcomes: readonly Outcome[]): Promise<void> {
    const done = outcomes.filter((o) => FINAL.has(o.state));
    if (done.length === 0) return;
    const now = this.options.clock.now();
    const owner = this.options.nodeId;
    const statements: InStatement[] = done.map((o) => ({
      sql: `INSERT OR IGNORE INTO replicated_done (message_id, address, done_at)
            SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM replicated_messages WHERE id = ? AND owner = ?)`,
      args: [o.messageId, o.address, now, o.messageId, owner],
    }));
    for (const id of new Set(done.map((o) => o.messageId))) statements.push(...forgetIfDone(id, owner, now));
    await this.#mark(statements, now);
  }

  /** An operator cancelled a message (or one recipient of it) here: those recipients are done for the fleet too. */
  async cancelled(at: { readonly messageId: string; readonly address?: string }): Promise<void> {
    const { nodeId, clock } = this.options;
    const now = clock.now();
    await this.#mark([
      {
        sql: `INSERT OR IGNORE INTO replicated_done (message_id, address, done_at)
              SELECT m.id, json_extract(r.value, '$.address'), ?
              FROM replicated_messages AS m, json_each(m.message, '$.recipients') AS r
              WHERE m.id = ? AND m.owner = ? AND m.finished_at IS NULL
                AND (? IS NULL OR lower(json_extract(r.value, '$.address')) = lower(?))`,
        args: [now, at.messageId, nodeId, at.address ?? null, at.address ?? null],
      },
      ...forgetIfDone(at.messageId, nodeId, now),
    ], now);
  }

  /**
   * Write done marks on the server; while it does not answer, into the
   * outbox (the node has lost its lease by the time anyone could adopt). A
   * mark the server refuses is logged: at worst an adopter sends that
   * recipient again.
   */
  async #mark(statements: InStatement[], now: number): Promise<void> {
    try {
      await this.options.shared.client.batch(statements, "write");
    } catch (error) {
      if (!sharedUnreachable(error)) {
        this.options.log("error", "the shared database refused done marks", { error: errorText(error) });
        return;
      }
      await writeBatch(this.options.local, throughOutbox(statements, now));
    }
  }

  /**
   * The heartbeat under replicated durability. The first (and the first
   * after being fenced) registers the node under a new epoch and drops what
   * others adopted before the lease is taken; later ones carry the epoch.
   */
  async beat(row: NodeBeat): Promise<void> {
    if (this.#epoch !== undefined) {
      const sent = this.#monotonic();
      if (await this.options.registry.beatAt(row, this.#epoch)) {
        this.#beatAt = sent;
        return;
      }
      this.options.log(
        "warn",
        "another node adopted this node's mail while it was silent: it stops sending until it has dropped what was adopted",
        {
          epoch: this.#epoch,
        },
      );
      this.#epoch = undefined;
      this.#beatAt = undefined;
    }
    const sent = this.#monotonic();
    const epoch = await this.options.registry.register(row);
    await this.#dropAdopted();
    this.#epoch = epoch;
    this.#beatAt = sent;
  }

  /**
   * The periodic job: adopt the mail of nodes silent for RELAY_NODE_DEAD_AFTER,
   * a batch at a time, and forget tombstones older than RELAY_MAX_QUEUE_TIME.
   */
  async run(): Promise<void> {
    if (!this.mayDeliver()) return; // a node that cannot show it is alive takes nothing on
    const { shared, nodeId, clock, deadAfterMs, registry, log } = this.options;
    await shared.client.execute({
      sql: "DELETE FROM replicated_messages WHERE finished_at < ?",
      args: [clock.now() - this.options.maxQueueTime],
    });
    const silentSince = clock.now() - deadAfterMs;
    // Owners of unfinished mail that are silent, or gone from the registry (relay nodes remove).
    const silent = await shared.client.execute({
      sql: `SELECT DISTINCT m.owner AS id, n.epoch AS epoch FROM replicated_messages AS m
              LEFT JOIN nodes AS n ON n.id = m.owner
            WHERE m.finished_at IS NULL AND m.owner != ? AND (n.id IS NULL OR n.heartbeat_at < ?)`,
      args: [nodeId, silentSince],
    });
    for (const row of silent.rows) {
      const dead = String(row.id);
      if (row.epoch !== null && await registry.fence(dead, Number(row.epoch), silentSince)) {
        log("warn", "a node is silent: its replicated mail is adopted", {
          node: dead,
          silent_for_ms: clock.now() - silentSince + deadAfterMs,
        });
      }
      let adopted = 0;
      for (;;) {
        const taken = await this.#claim(dead, silentSince);
        if (taken === 0 || !this.mayDeliver()) break;
        adopted += taken;
      }
      if (adopted > 0) log("info", "adopted replicated mail of a silent node", { node: dead, messages: adopted });
    }
  }

  /** Claim a batch of `dead`'s messages while it is still silent (or gone), and queue them here. Returns how many. */
  async #claim(dead: string, silentSince: number): Promise<number> {
    const { shared, store, nodeId, clock, log } = this.options;
    const claimed = await shared.client.execute({
      sql: `UPDATE replicated_messages SET owner = ?, adopted_at = ?
            WHERE id IN (SELECT id FROM replicated_messages WHERE owner = ? AND finished_at IS NULL LIMIT ?)
              AND NOT EXISTS (SELECT 1 FROM nodes WHERE id = ? AND heartbeat_at >= ?)
            RETURNING id, message, body,
              (SELECT json_group_array(address) FROM replicated_done WHERE message_id = replicated_messages.id) AS done`,
      args: [nodeId, clock.now(), dead, ADOPT_BATCH, dead, silentSince],
    });
    for (const row of claimed.rows) {
      const id = String(row.id);
      const envelope = JSON.parse(String(row.message)) as Omit<NewMessage, "body">;
      const done = new Set(JSON.parse(String(row.done)) as string[]);
      const recipients = envelope.recipients.filter((r) => !r.suppressed && !done.has(r.address));
      try {
        if (recipients.length === 0) {
          await shared.client.batch(forgetIfDone(id, nodeId, clock.now()), "write");
          continue;
        }
        const body = new Uint8Array(row.body as ArrayBuffer);
        await store.adopt(id, { ...envelope, recipients, body, adoptedFrom: dead });
      } catch (error) {
        // Handed back: the next run claims it again.
        log("error", "adopting a message failed", { message_id: id, node: dead, error: errorText(error) });
        await shared.client.execute({
          sql: "UPDATE replicated_messages SET owner = ?, adopted_at = NULL WHERE id = ? AND owner = ?",
          args: [dead, id, nodeId],
        }).catch(() => undefined);
      }
    }
    return claimed.rows.length;
  }

  /** Cancel here the queued mail the server says another node owns now: it adopted it. */
  async #dropAdopted(): Promise<void> {
    const { local, shared, store, nodeId, log } = this.options;
    await shared.sync(); // the replica sees every claim made before this node registered again
    const queued = await local.client.execute(`SELECT DISTINCT message_id FROM recipients WHERE ${IN_QUEUE}`);
    const ids = queued.rows.map((r) => String(r.message_id));
    let dropped = 0;
    for (let i = 0; i < ids.length; i += OWNERSHIP_BATCH) {
      const chunk: InValue[] = ids.slice(i, i + OWNERSHIP_BATCH);
      const owned = await shared.client.execute({
        sql: `SELECT id, owner FROM replicated_messages
              WHERE id IN (${chunk.map(() => "?").join(", ")}) AND (owner != ? OR finished_at IS NOT NULL)`,
        args: [...chunk, nodeId],
      });
      for (const row of owned.rows) {
        await store.control.cancel({ messageId: String(row.id) });
        dropped++;
        log("info", "a message this node queued was adopted by another node: cancelled here", {
          message: String(row.id),
          owner: String(row.owner),
        });
      }
    }
    if (dropped > 0) log("warn", "dropped mail other nodes adopted", { messages: dropped });
  }
}

function doneMark(messageId: string, address: string, now: number): InStatement {
  return {
    sql: "INSERT OR IGNORE INTO replicated_done (message_id, address, done_at) VALUES (?, ?, ?)",
    args: [messageId, address, now],
  };
}

/**
 * A message owned by `owner` whose every recipient is done becomes a
 * tombstone: its body, envelope and marks go, the row stays for
 * RELAY_MAX_QUEUE_TIME, so that a node coming back finds it finished, not unknown.
 */
function forgetIfDone(id: string, owner: string, now: number): InStatement[] {
  return [
    {
      sql: `UPDATE replicated_messages SET finished_at = ?, body = x'', message = '{}'
            WHERE id = ? AND owner = ? AND finished_at IS NULL AND NOT EXISTS (
              SELECT 1 FROM json_each(replicated_messages.message, '$.recipients') AS r
              WHERE json_extract(r.value, '$.address') NOT IN (
                SELECT address FROM replicated_done WHERE message_id = replicated_messages.id))`,
      args: [now, id, owner],
    },
    {
      sql: `DELETE FROM replicated_done WHERE message_id = ?
              AND EXISTS (SELECT 1 FROM replicated_messages WHERE id = ? AND finished_at IS NOT NULL)`,
      args: [id, id],
    },
  ];
}
