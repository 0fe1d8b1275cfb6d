import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";

/**
 * Whether the node reaches the fleet's shared server, as its writes there
 * find out (the heartbeat, the outbox): partitioned from the first failure
 * until the next success. Meanwhile the node reads its replica and keeps
 * its shared writes in the outbox; /readyz, GET /v1/fleet and the dashboard
 * say since when.
 */
export class Partition {
  #since: number | undefined;
  #error: string | undefined;

  constructor(private readonly clock: Clock, private readonly log: Logger) {}

  /** When the node lost the shared server (epoch ms); undefined while it reaches it. */
  get since(): number | undefined {
    return this.#since;
  }

  /** The failure that began the partition. */
  get error(): string | undefined {
    return this.#error;
  }

  reached(): void {
    if (this.#since === undefined) return;
    this.log("info", "the shared database answers again: partition over", {
      partitioned_since: new Date(this.#since).toISOString(),
      partitioned_ms: this.clock.now() - this.#since,
    });
    this.#since = undefined;
    this.#error = undefined;
  }

  failed(error: unknown): void {
    if (this.#since !== undefined) return;
    this.#since = this.clock.now();
    this.#error = error instanceof Error ? error.message : String(error);
    this.log("warn", "the shared database cannot be reached: partitioned, working from the replica", {
      error: this.#error,
    });
  }
}
