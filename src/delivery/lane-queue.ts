import type { Lane } from "../core/lane.ts";

/**
 * Transactional mail served this many times for each bulk message while
 * both wait: weighted fair queueing, so a bulk backlog never holds up a
 * password reset for longer than a few deliveries, and a steady stream of
 * transactional mail never stops bulk altogether.
 */
export const TRANSACTIONAL_WEIGHT = 10;

/** A destination's waiting work in two lanes, each first in first out. */
export class LaneQueue<T> {
  private readonly lanes: Record<Lane, T[]> = { transactional: [], bulk: [] };
  /** Transactional items served since the last bulk one. */
  private credit = 0;

  get length(): number {
    return this.lanes.transactional.length + this.lanes.bulk.length;
  }

  /** How many wait in this lane, and for bulk also those served before it. */
  ahead(lane: Lane): number {
    return lane === "transactional" ? this.lanes.transactional.length : this.length;
  }

  push(item: T, lane: Lane): void {
    this.lanes[lane].push(item);
  }

  /** The lane the next item comes from, or undefined when empty. */
  nextLane(): Lane | undefined {
    const { transactional, bulk } = this.lanes;
    if (transactional.length === 0) return bulk.length === 0 ? undefined : "bulk";
    if (bulk.length === 0 || this.credit < TRANSACTIONAL_WEIGHT) return "transactional";
    return "bulk";
  }

  shift(): T | undefined {
    const lane = this.nextLane();
    if (lane === undefined) return undefined;
    this.credit = lane === "bulk" ? 0 : this.credit + 1;
    return this.lanes[lane].shift();
  }

  /** Everything waiting, transactional first, left in place. */
  items(): T[] {
    return [...this.lanes.transactional, ...this.lanes.bulk];
  }

  /** Everything, emptied: transactional first. */
  drain(): T[] {
    return [...this.lanes.transactional.splice(0), ...this.lanes.bulk.splice(0)];
  }
}
