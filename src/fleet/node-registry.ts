import type { InValue } from "@libsql/client";
import { asc, eq } from "drizzle-orm";
import type { Database } from "../queue/database.ts";
import { nodes } from "../queue/schema.ts";

export type NodeRecord = typeof nodes.$inferSelect;
/** What a node writes of itself at each heartbeat: all but its fencing token. */
export type NodeBeat = Omit<NodeRecord, "epoch">;

/**
 * The fleet's nodes (the `nodes` table of the shared state; of the node's
 * own database when it runs alone): each node writes its own row, every
 * node reads them all.
 */
export class NodeRegistry {
  constructor(private readonly database: Database) {}

  /** Write this node's row, as it is now; its epoch stays as it is. */
  async beat(node: NodeBeat): Promise<void> {
    const { id: _, ...rest } = node;
    await this.database.db.insert(nodes).values(node).onConflictDoUpdate({ target: nodes.id, set: rest });
  }

  /**
   * RELAY_DURABILITY=replicated: the node (re)joins: its row written with a
   * new epoch, which every later beat must carry. Returns the epoch.
   */
  async register(node: NodeBeat): Promise<number> {
    const result = await this.database.client.execute({
      sql: `INSERT INTO nodes (id, source_ip, hostname, api_url, version, started_at, heartbeat_at, queue_depth, state,
              epoch)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
            ON CONFLICT (id) DO UPDATE SET source_ip = excluded.source_ip, hostname = excluded.hostname,
              api_url = excluded.api_url, version = excluded.version, started_at = excluded.started_at,
              heartbeat_at = excluded.heartbeat_at,
              queue_depth = excluded.queue_depth, state = excluded.state, epoch = nodes.epoch + 1
            RETURNING epoch`,
      args: beatArgs(node),
    });
    return Number(result.rows[0]!.epoch);
  }

  /** A beat under `epoch`: false when the node was fenced meanwhile (another node adopted its mail). */
  async beatAt(node: NodeBeat, epoch: number): Promise<boolean> {
    const result = await this.database.client.execute({
      sql: `UPDATE nodes SET source_ip = ?, hostname = ?, api_url = ?, version = ?, started_at = ?,
              heartbeat_at = ?, queue_depth = ?, state = ?
            WHERE id = ? AND epoch = ?`,
      args: [...beatArgs(node).slice(1), node.id, epoch],
    });
    return result.rowsAffected === 1;
  }

  /**
   * Fence a node silent since before `silentSince`: its epoch raised, so its
   * next beat is refused. False when it beat meanwhile, or another node
   * fenced it first (its epoch is no longer `epoch`).
   */
  async fence(id: string, epoch: number, silentSince: number): Promise<boolean> {
    const result = await this.database.client.execute({
      sql: "UPDATE nodes SET epoch = epoch + 1 WHERE id = ? AND epoch = ? AND heartbeat_at < ?",
      args: [id, epoch, silentSince],
    });
    return result.rowsAffected === 1;
  }

  async list(): Promise<NodeRecord[]> {
    return await this.database.db.select().from(nodes).orderBy(asc(nodes.id));
  }

  async get(id: string): Promise<NodeRecord | undefined> {
    const [row] = await this.database.db.select().from(nodes).where(eq(nodes.id, id));
    return row;
  }

  /** Take a node out of the registry (it was removed from the fleet): its IP leaves the SPF record. */
  async remove(id: string): Promise<boolean> {
    const result = await this.database.client.execute({ sql: "DELETE FROM nodes WHERE id = ?", args: [id] });
    return result.rowsAffected > 0;
  }

  /** Every node's sending IP, for the SPF record the fleet's domains publish. */
  async sourceIps(): Promise<string[]> {
    const rows = await this.database.db.selectDistinct({ ip: nodes.sourceIp }).from(nodes).orderBy(asc(nodes.sourceIp));
    return rows.flatMap((r) => (r.ip === null ? [] : [r.ip]));
  }
}

function beatArgs(node: NodeBeat): InValue[] {
  return [
    node.id,
    node.sourceIp,
    node.hostname,
    node.apiUrl,
    node.version,
    node.startedAt,
    node.heartbeatAt,
    node.queueDepth,
    node.state,
  ];
}
