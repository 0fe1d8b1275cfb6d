import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { QueueStore } from "./store.ts";

/** Messages per transaction: short transactions, so acceptance never waits long behind a purge. */
const BATCH = 500;
/** Batches per run; what is left waits for the next run. */
const MAX_BATCHES = 200;

/**
 * RELAY_RETENTION: delete what is finished and older than the retention
 * (messages, their recipients and events), a batch at a time. Bodies are
 * gone already (dropped when the message finished); this keeps the rows and
 * the event log from growing without end on a node's small disk.
 */
export async function purgeFinished(
  store: Pick<QueueStore, "purgeFinished">,
  clock: Clock,
  retentionMs: number,
  log: Logger,
): Promise<number> {
  const before = clock.now() - retentionMs;
  let purged = 0;
  // A failure goes to the caller (the periodic job logs it); what was purged before it is still said.
  try {
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const n = await store.purgeFinished(before, BATCH);
      purged += n;
      if (n < BATCH) break;
    }
  } finally {
    if (purged > 0) log("info", "purged finished messages past the retention", { messages: purged });
  }
  return purged;
}
