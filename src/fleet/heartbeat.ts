import type { Clock } from "../core/clock.ts";
import type { NodeBeat, NodeRecord } from "./node-registry.ts";
import type { Partition } from "./partition.ts";

/** How often a node writes its row, at most; a sixth of RELAY_NODE_DEAD_AFTER when that is shorter than a minute. */
const HEARTBEAT_EVERY_MS = 10_000;

/** The pause between beats for RELAY_NODE_DEAD_AFTER: several beats fit in the half of it a lease lasts. */
export function heartbeatEvery(deadAfterMs: number): number {
  return Math.min(HEARTBEAT_EVERY_MS, Math.max(250, Math.floor(deadAfterMs / 6)));
}

export interface HeartbeatOptions {
  /** Writes the node's row: NodeRegistry.beat, or under replicated durability Replication.beat. */
  readonly write: (row: NodeBeat) => Promise<void>;
  /** What the node says of itself that does not change while it runs. */
  readonly node: Pick<NodeRecord, "id" | "sourceIp" | "hostname" | "apiUrl" | "version">;
  /** Recipients in the node's queue now. */
  readonly queueDepth: () => Promise<number>;
  readonly clock: Clock;
  /** Told whether the write reached the server; undefined when the node runs alone. */
  readonly partition?: Partition;
}

/**
 * The node's row in the registry, written at start, every `everyMs`
 * (heartbeatEvery) and at stop: the fleet's view of who is up (GET /v1/fleet) and which IPs
 * send for it (SPF). A beat the server does not take marks the node
 * partitioned; the next one that it takes ends that.
 */
export class Heartbeat {
  readonly name = "writing the node's heartbeat";
  readonly everyMs: number;
  readonly atStart = true;
  readonly #startedAt: number;
  #state: NodeRecord["state"] = "running";

  constructor(private readonly options: HeartbeatOptions & { readonly everyMs: number }) {
    this.#startedAt = options.clock.now();
    this.everyMs = options.everyMs;
  }

  async run(): Promise<void> {
    const { write, node, clock, partition } = this.options;
    const row: NodeBeat = {
      ...node,
      startedAt: this.#startedAt,
      heartbeatAt: clock.now(),
      queueDepth: await this.options.queueDepth(),
      state: this.#state,
    };
    try {
      await write(row);
    } catch (error) {
      if (!partition) throw error;
      partition.failed(error);
      return;
    }
    partition?.reached();
  }

  /** The node drains or stops: said at once, not at the next beat. */
  async becomes(state: NodeRecord["state"]): Promise<void> {
    this.#state = state;
    await this.run();
  }
}
