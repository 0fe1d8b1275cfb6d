import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A statement for the fleet's shared state, as a node's transaction wrote it (src/fleet/outbox.ts). */
export interface OutboxStatement {
  readonly sql: string;
  readonly args: unknown[];
}

/**
 * Writes to the fleet's shared state made inside this node's own
 * transactions (the suppression a hard bounce calls for), in the order they
 * were made, until the shared server has applied them. Each is idempotent
 * (an upsert), so one applied again after a crash changes nothing.
 */
export const sharedOutbox = sqliteTable("shared_outbox", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  statement: text("statement", { mode: "json" }).$type<OutboxStatement>().notNull(),
  createdAt: integer("created_at").notNull(),
});

export const nodeStates = ["running", "draining", "stopped"] as const;

/**
 * The fleet's nodes, in the shared database (a node alone lists itself in
 * its own): each node upserts its row at every heartbeat.
 */
export const nodes = sqliteTable(
  "nodes",
  {
    /** RELAY_NODE_ID. */
    id: text("id").primaryKey(),
    /** RELAY_SOURCE_IP; null when the node sends from whatever address the system picks. */
    sourceIp: text("source_ip"),
    hostname: text("hostname").notNull(),
    version: text("version").notNull(),
    startedAt: integer("started_at").notNull(),
    heartbeatAt: integer("heartbeat_at").notNull(),
    /** Recipients in the node's queue (queued, deferred or held) at its last heartbeat. */
    queueDepth: integer("queue_depth").notNull(),
    state: text("state", { enum: nodeStates }).notNull(),
  },
  (t) => [index("nodes_heartbeat").on(t.heartbeatAt)],
);
