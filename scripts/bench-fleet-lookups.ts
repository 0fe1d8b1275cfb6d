/**
 * One lookup's latency through the database a relay reads its shared state
 * from (issue 17; run by scripts/bench-fleet.ts). Given a relay's
 * environment (RELAY_DATA_DIR, and RELAY_SHARED_DB_URL for a fleet node), it
 * opens the services as `relay serve` does (src/app/services.ts: the node's
 * own database alone, the embedded replica DATA/shared.db on a fleet node,
 * each on its worker thread), then times one call at a time:
 *
 *   - the suppression check of a message to 10 recipients, one of them on
 *     the list (SuppressionStore.lookup, once per message at ingress);
 *   - the DKIM key lookup of a domain (DomainStore.signingKeys: what
 *     DomainService reads when its 5-second cache of a domain's keys has
 *     expired, so at most once per 5 s per domain under load).
 *
 *   node_modules/.bin/bun scripts/bench-fleet-lookups.ts --calls 2000 --entries 100000 --domain sender.test
 *
 * Prints one JSON line (the last line of its output): per lookup, the calls
 * measured (after a tenth more, not measured) and p50, p99 and mean in
 * microseconds, with what was found, so a lookup that found nothing shows.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Closers } from "../src/app/closers.ts";
import { openServices } from "../src/app/services.ts";
import { loadConfig } from "../src/config/load.ts";
import { createLogger } from "../src/core/log.ts";
import { DomainStore } from "../src/queue/domains.ts";
import { suppressedAddress } from "./bench-suppressions.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "2000" },
    entries: { type: "string", default: "100000" },
    domain: { type: "string", default: "sender.test" },
  },
});
const calls = Number(values.calls);
const entries = Number(values.entries);
if (!Number.isInteger(calls) || calls <= 0 || !Number.isInteger(entries) || entries <= 0) {
  console.error("bench-fleet-lookups: --calls and --entries take positive integers");
  process.exit(2);
}
const domain = values.domain;

export interface LookupTimes {
  readonly calls: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
}

/** `call(i)` for i from 0, a tenth of `calls` unmeasured first, then `calls` timed one at a time. */
async function timed(call: (i: number) => Promise<unknown>): Promise<LookupTimes> {
  const warmup = Math.ceil(calls / 10);
  for (let i = 0; i < warmup; i++) await call(i);
  const us: number[] = [];
  for (let i = warmup; i < warmup + calls; i++) {
    const t0 = performance.now();
    await call(i);
    us.push((performance.now() - t0) * 1000);
  }
  us.sort((a, b) => a - b);
  const at = (q: number) => us[Math.floor(q * (us.length - 1))]!;
  return { calls, p50Us: at(0.5), p99Us: at(0.99), meanUs: us.reduce((a, b) => a + b, 0) / us.length };
}

const version = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8")).version as string;
const config = loadConfig(process.env, hostname());
const log = createLogger("warn", "json", (line) => console.error(line));
const closers = new Closers(log);
try {
  const services = await openServices(config, version, log, closers, { replica: true });
  // Where openServices keeps domains and keys: the shared state on a fleet node, the node's database alone.
  const domains = new DomainStore(services.shared ?? services.database);

  let found = 0;
  const suppression = await timed(async (i) => {
    const addresses = [suppressedAddress((i * 7919) % entries)];
    for (let r = 1; r < 10; r++) addresses.push(`r${i}-${r}@open${r}.test`);
    found += (await services.suppressions.lookup(addresses, { domain })).size;
  });
  let keys = 0;
  const dkim = await timed(async () => {
    keys = (await domains.signingKeys(domain)).length;
  });
  const warmup = Math.ceil(calls / 10);
  console.log(JSON.stringify({
    shared: services.shared !== undefined,
    suppression: { ...suppression, suppressedPerCall: found / (calls + warmup) },
    dkim: { ...dkim, keys },
  }));
} finally {
  await closers.closeAll();
}
process.exit(0); // the database workers' handles must not keep the script alive
