import { asc, eq } from "drizzle-orm";
import type { Database } from "../queue/database.ts";
import { nodes } from "../queue/schema.ts";

export type NodeRecord = typeof nodes.$inferSelect;

/** A node as the fleet sees it: stopped when it said so, down when silent for RELAY_NODE_DEAD_AFTER. */
export type NodeStatus = "up" | "draining" | "stopped" | "down";

export function nodeStatus(node: NodeRecord, deadAfterMs: number, now: number): NodeStatus {
  if (node.state === "stopped") return "stopped";
  if (now - node.heartbeatAt > deadAfterMs) return "down";
  return node.state === "draining" ? "draining" : "up";
}

/**
 * The fleet's nodes (the `nodes` table of the shared state; of the node's
 * own database when it runs alone): each node writes its own row, every
 * node reads them all.
 */
export class NodeRegistry {
  constructor(private readonly database: Database) {}

  /** Write this node's row, as it is now. */
  async beat(node: NodeRecord): Promise<void> {
    const { id: _, ...rest } = node;
    await this.database.db.insert(nodes).values(node).onConflictDoUpdate({ target: nodes.id, set: rest });
  }

  async list(): Promise<NodeRecord[]> {
    return await this.database.db.select().from(nodes).orderBy(asc(nodes.id));
  }

  async get(id: string): Promise<NodeRecord | undefined> {
    const [row] = await this.database.db.select().from(nodes).where(eq(nodes.id, id));
    return row;
  }

  /** Every node's sending IP, for the SPF record the fleet's domains publish. */
  async sourceIps(): Promise<string[]> {
    const rows = await this.database.db.selectDistinct({ ip: nodes.sourceIp }).from(nodes).orderBy(asc(nodes.sourceIp));
    return rows.flatMap((r) => (r.ip === null ? [] : [r.ip]));
  }

  /** Take a node out of the registry (it was removed from the fleet): its IP leaves the SPF record. */
  async remove(id: string): Promise<boolean> {
    const result = await this.database.client.execute({ sql: "DELETE FROM nodes WHERE id = ?", args: [id] });
    return result.rowsAffected > 0;
  }
}
