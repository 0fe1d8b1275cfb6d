import type { NodeRecord } from "./node-registry.ts";

/** Where GET /v1/fleet and the dashboard read the fleet from (the root passes the same to both). */
export interface FleetSource {
  /** This node's id (RELAY_NODE_ID). */
  readonly self: string;
  /** Whether the node is one of a fleet (RELAY_SHARED_DB_URL) or alone. */
  readonly shared: boolean;
  readonly nodes: () => Promise<readonly NodeRecord[]>;
  /** RELAY_NODE_DEAD_AFTER: a node silent this long is down. */
  readonly deadAfterMs: number;
  /** When this node lost the shared server; undefined while it reaches it. */
  readonly partitionedSince: () => number | undefined;
  /** Writes for the shared state waiting in this node's outbox; undefined for a node alone. */
  readonly outboxWaiting?: () => Promise<number>;
  readonly now: () => number;
}

export const NODE_STATUSES = ["up", "draining", "stopped", "down"] as const;
/** stopped: it said so when it stopped; down: no heartbeat for RELAY_NODE_DEAD_AFTER. */
export type NodeStatus = (typeof NODE_STATUSES)[number];

export interface FleetNodeView {
  readonly id: string;
  /** This is the node that answered. */
  readonly self: boolean;
  readonly status: NodeStatus;
  readonly sourceIp: string | null;
  readonly hostname: string;
  /** RELAY_NODE_URL: where the other nodes reach its API. */
  readonly apiUrl: string | null;
  readonly version: string;
  readonly startedAt: number;
  readonly heartbeatAt: number;
  /** Recipients in its queue at its last heartbeat. */
  readonly queueDepth: number;
}

/** This node's link to the shared server: cut off since when, and the writes waiting for it. */
export interface FleetLink {
  readonly self: string;
  readonly shared: boolean;
  readonly partitionedSince: number | undefined;
  /** undefined for a node alone. */
  readonly outbox: number | undefined;
  /** When this was read. */
  readonly now: number;
}

export interface FleetView extends FleetLink {
  readonly nodes: readonly FleetNodeView[];
}

export function nodeStatus(node: NodeRecord, deadAfterMs: number, now: number): NodeStatus {
  if (node.state === "stopped") return "stopped";
  if (now - node.heartbeatAt > deadAfterMs) return "down";
  return node.state === "draining" ? "draining" : "up";
}

export async function fleetLink(source: FleetSource): Promise<FleetLink> {
  return {
    self: source.self,
    shared: source.shared,
    partitionedSince: source.partitionedSince(),
    outbox: source.outboxWaiting ? await source.outboxWaiting() : undefined,
    now: source.now(),
  };
}

/** The fleet's nodes as the registry has them (read from this node's replica), and this node's link. */
export async function fleetView(source: FleetSource): Promise<FleetView> {
  const [link, records] = await Promise.all([fleetLink(source), source.nodes()]);
  return {
    ...link,
    nodes: records.map((n) => ({
      id: n.id,
      self: n.id === source.self,
      status: nodeStatus(n, source.deadAfterMs, link.now),
      sourceIp: n.sourceIp,
      hostname: n.hostname,
      apiUrl: n.apiUrl,
      version: n.version,
      startedAt: n.startedAt,
      heartbeatAt: n.heartbeatAt,
      queueDepth: n.queueDepth,
    })),
  };
}
