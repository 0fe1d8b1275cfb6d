import type { Logger } from "../core/log.ts";
import type { Database } from "../queue/database.ts";
import { WarmupStore } from "../queue/warmup.ts";
import type { Warmup } from "../shaping/rules.ts";
import { WarmupLedger } from "../shaping/warmup-ledger.ts";
import { sharedUnreachable } from "../fleet/unreachable.ts";
import type { PeriodicJob } from "./periodic.ts";

/**
 * How often the warmup state delivery changed is written: what a kill -9
 * may lose is the counts of this long (a clean stop writes them all).
 */
const WRITE_WARMUP_EVERY_MS = 5_000;

/** IP warmup: the ledger delivery asks and tells, and the table it is kept in across restarts. */
export interface WarmupService {
  readonly ledger: WarmupLedger;
  readonly store: WarmupStore;
}

/**
 * The ledger, going on from the state stored by the last run. `sourceIp`:
 * the state is the fleet's shared one, of which this node's IP is its own
 * (a node rebuilt on the same IP goes on with that IP's warmup).
 */
export async function openWarmup(
  plans: Warmup,
  database: Database,
  log: Logger,
  sourceIp?: string,
): Promise<WarmupService> {
  const store = new WarmupStore(database);
  return { ledger: new WarmupLedger(plans, await store.load(sourceIp), log), store };
}

/** Write what changed since the last write. */
export function writeWarmup({ ledger, store }: WarmupService): Promise<void> {
  return ledger.flush((records) => store.save(records));
}

/** While the fleet's shared server is away, the counts wait in the ledger for the next write: no warning every 5 s. */
export function writeWarmupJob(warmup: WarmupService): PeriodicJob {
  return {
    name: "writing the warmup state",
    everyMs: WRITE_WARMUP_EVERY_MS,
    run: () =>
      writeWarmup(warmup).catch((error) => {
        if (!sharedUnreachable(error)) throw error;
      }),
  };
}
