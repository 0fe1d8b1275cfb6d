import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { InQueueCount } from "../queue/records.ts";
import type { Heartbeat } from "./heartbeat.ts";

/** Recipients still in the node's queue, by state. */
export interface QueueLeft {
  /** Due or waiting for a connection, in flight included. */
  readonly queued: number;
  /** Waiting for their next attempt after a temporary failure. */
  readonly deferred: number;
  /** Held by the operator: they stay until released or bounced. */
  readonly held: number;
  readonly total: number;
}

export interface DrainOptions {
  readonly heartbeat: Pick<Heartbeat, "becomes">;
  /** The node's queue, counted now (not a cached count: a drain's "empty" must be true when said). */
  readonly inQueue: () => Promise<readonly InQueueCount[]>;
  /**
   * Give the queue to the fleet's other nodes rather than deliver it here.
   * Only RELAY_DURABILITY=replicated can (the others hold the messages);
   * undefined, as with `local`: the node delivers its own queue.
   */
  readonly handOver?: () => Promise<void>;
  readonly clock: Clock;
  readonly log: Logger;
}

/**
 * `relay drain`: the node takes no new mail (SMTP and HTTP refuse it, the
 * front ends ask `draining`), says so in the registry at once, and goes on
 * delivering its queue until it is empty, when the operator stops it. It
 * lasts until the process ends: a restart is a new start, accepting again.
 */
export class Drain {
  #since: number | undefined;

  constructor(private readonly options: DrainOptions) {}

  /** When the drain began (epoch ms); undefined while the node accepts mail. */
  get since(): number | undefined {
    return this.#since;
  }

  get draining(): boolean {
    return this.#since !== undefined;
  }

  /** Begin (a second call changes nothing). */
  async start(): Promise<void> {
    if (this.#since !== undefined) return;
    const { clock, log, heartbeat, handOver } = this.options;
    this.#since = clock.now();
    log("info", "draining: new mail is refused, the queue is delivered", {
      queue: handOver ? "handed over" : "delivered by this node",
    });
    await heartbeat.becomes("draining");
    await handOver?.();
  }

  /** Whether the queue goes to other nodes (true) or this node delivers it (false). */
  get handsOver(): boolean {
    return this.options.handOver !== undefined;
  }

  async left(): Promise<QueueLeft> {
    let queued = 0, deferred = 0, held = 0;
    for (const count of await this.options.inQueue()) {
      queued += count.queued;
      deferred += count.deferred;
      held += count.held;
    }
    return { queued, deferred, held, total: queued + deferred + held };
  }
}
