import type { Clock } from "../core/clock.ts";
import type { NodeRecord, NodeRegistry } from "./node-registry.ts";
import type { Partition } from "./partition.ts";

/** How often a node writes its row: a few beats fit in RELAY_NODE_DEAD_AFTER's smallest sensible value. */
export const HEARTBEAT_EVERY_MS = 10_000;

export interface HeartbeatOptions {
  readonly registry: NodeRegistry;
  /** What the node says of itself that does not change while it runs. */
  readonly node: Pick<NodeRecord, "id" | "sourceIp" | "hostname" | "version">;
  /** Recipients in the node's queue now. */
  readonly queueDepth: () => Promise<number>;
  readonly clock: Clock;
  /** Told whether the write reached the server; undefined when the node runs alone. */
  readonly partition?: Partition;
}

/**
 * The node's row in the registry, written at start, every HEARTBEAT_EVERY_MS
 * and at stop: the fleet's view of who is up (GET /v1/fleet) and which IPs
 * send for it (SPF). A beat the server does not take marks the node
 * partitioned; the next one that it takes ends that.
 */
export class Heartbeat {
  readonly name = "writing the node's heartbeat";
  readonly everyMs = HEARTBEAT_EVERY_MS;
  readonly atStart = true;
  readonly #startedAt: number;
  #state: NodeRecord["state"] = "running";

  constructor(private readonly options: HeartbeatOptions) {
    this.#startedAt = options.clock.now();
  }

  get state(): NodeRecord["state"] {
    return this.#state;
  }

  async run(): Promise<void> {
    const { registry, node, clock, partition } = this.options;
    const row: NodeRecord = {
      ...node,
      startedAt: this.#startedAt,
      heartbeatAt: clock.now(),
      queueDepth: await this.options.queueDepth(),
      state: this.#state,
    };
    try {
      await registry.beat(row);
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
