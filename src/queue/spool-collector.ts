import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { BodySpool } from "./spool.ts";
import type { MessageBodies } from "./message-bodies.ts";

/** A closed segment is compacted once the bodies still needed fill less than this share of it. */
const COMPACT_BELOW = 0.5;
/**
 * ...and nothing was written to it for this long: most mail is delivered
 * within minutes, so waiting lets a segment empty by itself rather than be copied.
 */
const COMPACT_AFTER_MS = 10 * 60_000;
/** Bodies moved per transaction, and per run. */
const MOVE_BATCH = 200;
const MOVE_PER_RUN = 5_000;

/**
 * Frees the spool's disk: a closed segment no row refers to is removed; one
 * kept alive by a few bodies (mail that is still retried, a DSN still owed)
 * has them copied to the active segment and is removed on a later run. So
 * the spool holds about what the queue still needs, not everything that
 * passed through it while one message waited.
 */
export class SpoolCollector {
  constructor(
    private readonly bodies: Pick<MessageBodies, "spoolUsage" | "moveBodies">,
    private readonly spool: BodySpool,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  async collect(): Promise<{ removed: number; moved: number }> {
    let removed = 0;
    let moved = 0;
    try {
      // Read before the usage query: a segment written to after this is left for the next run.
      const sequence = this.spool.sequence;
      const ceiling = this.spool.activeSegment;
      const usage = await this.bodies.spoolUsage();
      for (const segment of this.spool.segments()) {
        if (segment >= ceiling || this.spool.touchedSince(segment, sequence)) continue;
        const use = usage.get(segment);
        if (use === undefined) {
          if (await this.spool.remove(segment)) removed++;
        } else if (moved < MOVE_PER_RUN && (await this.#worthCompacting(segment, use.bytes))) {
          moved += await this.#empty(segment, MOVE_PER_RUN - moved);
        }
      }
    } finally {
      // A failure goes to the caller (the periodic job logs it); what was done before it is still said.
      if (removed > 0 || moved > 0) {
        this.log("info", "spool collected", { segmentsRemoved: removed, bodiesMoved: moved });
      }
    }
    return { removed, moved };
  }

  async #worthCompacting(segment: number, liveBytes: number): Promise<boolean> {
    const { size, modifiedAt } = await this.spool.segmentStat(segment);
    return liveBytes < size * COMPACT_BELOW && modifiedAt <= this.clock.now() - COMPACT_AFTER_MS;
  }

  async #empty(segment: number, budget: number): Promise<number> {
    let moved = 0;
    while (moved < budget) {
      const n = await this.bodies.moveBodies(segment, Math.min(MOVE_BATCH, budget - moved));
      moved += n;
      if (n < MOVE_BATCH) break;
    }
    return moved;
  }
}
