import { blob, index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

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
    /** RELAY_NODE_URL: where the other nodes reach its HTTP API, for answers about the whole fleet. */
    apiUrl: text("api_url"),
    version: text("version").notNull(),
    startedAt: integer("started_at").notNull(),
    heartbeatAt: integer("heartbeat_at").notNull(),
    /** Recipients in the node's queue (queued, deferred or held) at its last heartbeat. */
    queueDepth: integer("queue_depth").notNull(),
    state: text("state", { enum: nodeStates }).notNull(),
    /**
     * The node's fencing token (RELAY_DURABILITY=replicated): raised when it
     * registers and when another node adopts its mail; a heartbeat or an
     * outcome carrying an older one is refused, and its node stops sending.
     */
    epoch: integer("epoch").notNull().default(0),
  },
  (t) => [index("nodes_heartbeat").on(t.heartbeatAt)],
);

/**
 * RELAY_DURABILITY=replicated, on the shared server: every message a node
 * acknowledged, held until each of its recipients is done, so that another
 * node can adopt it when its owner stops heartbeating (src/fleet/replication.ts).
 */
export const replicatedMessages = sqliteTable(
  "replicated_messages",
  {
    id: text("id").primaryKey(),
    /** The node that delivers it: the one that accepted it, or the one that adopted it. */
    owner: text("owner").notNull(),
    acceptedBy: text("accepted_by").notNull(),
    /** The message as ingress handed it to the queue (NewMessage), without its body. */
    message: text("message").notNull(),
    body: blob("body", { mode: "buffer" }).notNull(),
    acceptedAt: integer("accepted_at").notNull(),
    adoptedAt: integer("adopted_at"),
    /**
     * Every recipient is done: the body is dropped and the row kept a while,
     * so that a node that comes back knows its copy was finished elsewhere.
     */
    finishedAt: integer("finished_at"),
  },
  (t) => [index("replicated_messages_owner").on(t.owner), index("replicated_messages_finished").on(t.finishedAt)],
);

/** The recipients of unfinished replicated messages that are done (delivered, bounced, expired, suppressed). */
export const replicatedDone = sqliteTable(
  "replicated_done",
  {
    messageId: text("message_id").notNull(),
    address: text("address").notNull(),
    doneAt: integer("done_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.messageId, t.address] })],
);
