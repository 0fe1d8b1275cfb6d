import type { Outcome } from "../queue/records.ts";

/** RELAY_DURABILITY=replicated (src/fleet/replication.ts): what delivery asks and tells the fleet. */
export interface DeliveryFence {
  /** Whether this node holds its lease: a node that cannot show the fleet it is alive sends nothing. */
  mayDeliver(): boolean;
  /** Before outcomes are recorded: the fleet learns which recipients are done, so no adopter sends them again. */
  finished(outcomes: readonly Outcome[]): Promise<void>;
}
