/**
 * The queue listing at depth (issue 15), relay only, on loopback: a fresh
 * data directory pre-filled with N queued recipients (default 1,000,000,
 * written by scripts/bench-prefill.ts: 10 per message over 10,000 domains,
 * due in 30 days), then one recipient in 100 made deferred and one message
 * in 10 tagged `news`; `relay serve` on it, and GET /v1/queue/messages paged
 * through with its cursor, per filter: every page timed (ms from request to
 * parsed JSON), reported as p50 / p99 / max with the pages and rows seen.
 *
 *   bun scripts/bench-queue-listing.ts [--recipients N] [--limit 100] [--pages P] [--filtered-pages F]
 *                                      [--binary PATH] [--json FILE]
 *
 * --pages caps the pages read per case (default: until the listing ends);
 * --filtered-pages those of the filters checked on a bounded window (default
 * 300: a walk of a million entries there takes a thousand pages).
 * The target: every page under 100 ms with 1,000,000 queued.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "@libsql/client";
import { relayCommand, ROOT, serveRelay } from "./bench-serve.ts";

const { values } = parseArgs({
  options: {
    recipients: { type: "string", default: "1000000" },
    limit: { type: "string", default: "100" },
    pages: { type: "string" },
    "filtered-pages": { type: "string", default: "300" },
    binary: { type: "string" },
    json: { type: "string" },
  },
});
const RECIPIENTS = Number(values.recipients);
const LIMIT = Number(values.limit);
const MAX_PAGES = values.pages === undefined ? Infinity : Number(values.pages);
/** Pages read at most per filter checked on a bounded window (each page goes over SCAN_PER_PAGE entries). */
const FILTERED_PAGES = Number(values["filtered-pages"]);
const TOKEN = "bench-queue-listing-admin-token-0123456789";
const command = relayCommand(values.binary);
const run = mkdtempSync(join(tmpdir(), "relay-bench-listing-"));

/** The filters compared: the seeks, then those checked on a bounded window per page. */
const CASES: [name: string, query: string, bounded: boolean][] = [
  ["no filter", "", false],
  ["domain", "domain=d7.example", false],
  // Every recipient at d99.example is one of the deferred (id % 100 = 0).
  ["domain + state", "domain=d99.example&state=deferred", false],
  ["state alone", "state=deferred", true],
  ["tag", "tag=news", true],
  ["sender (no match)", "sender=nobody@bench.test", true],
  ["older than 2h (all match)", "older_than=2h", true],
];

function sh(file: string, argv: string[], env: NodeJS.ProcessEnv = {}): string {
  const done = spawnSync(file, argv, { env: { ...process.env, ...env }, encoding: "utf8" });
  if (done.status !== 0) throw new Error(`${file} ${argv.join(" ")}: exit ${done.status}\n${done.stderr}`);
  return done.stdout;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function main() {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    RELAY_DATA_DIR: run,
    RELAY_HOSTNAME: "relay.bench.test",
    RELAY_LOG_LEVEL: "warn",
    RELAY_ADMIN_TOKEN: TOKEN,
  };
  const migrate = command(["migrate"]);
  sh(migrate.file, migrate.argv, env);
  const db = join(run, "relay.db");
  const t0 = performance.now();
  sh(process.execPath, [join(ROOT, "scripts/bench-prefill.ts"), db, String(RECIPIENTS), "--no-events"]);
  const client = createClient({ url: `file:${db}` });
  await client.batch([
    "UPDATE recipients SET state = 'deferred', attempts = 1, last_reply = '451 4.7.1 try later' WHERE id % 100 = 0",
    `UPDATE messages SET tags = '["news"]' WHERE rowid % 10 = 0`,
  ], "write");
  await client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  client.close();
  console.log(
    `pre-fill ${RECIPIENTS.toLocaleString("en")} recipients: ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const relay = await serveRelay(command, env);
  const results = [];
  try {
    for (const [name, query, bounded] of CASES) {
      const maxPages = bounded ? Math.min(MAX_PAGES, FILTERED_PAGES) : MAX_PAGES;
      const times: number[] = [];
      let rows = 0;
      let cursor: string | null = null;
      do {
        const url = `${relay.url}/v1/queue/messages?limit=${LIMIT}${query ? `&${query}` : ""}${
          cursor ? `&cursor=${cursor}` : ""
        }`;
        const start = performance.now();
        const response = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
        const page = await response.json() as { recipients: unknown[]; next_cursor: string | null };
        times.push(performance.now() - start);
        if (!response.ok) throw new Error(`${url}: ${response.status} ${JSON.stringify(page)}`);
        rows += page.recipients.length;
        cursor = page.next_cursor;
      } while (cursor !== null && times.length < maxPages);
      const sorted = times.toSorted((a, b) => a - b);
      const result = {
        name,
        query,
        pages: times.length,
        rows,
        complete: cursor === null,
        p50: quantile(sorted, 0.5),
        p99: quantile(sorted, 0.99),
        max: sorted.at(-1)!,
      };
      results.push(result);
      console.log(
        `listing ${name.padEnd(26)} ${String(result.pages).padStart(6)} pages ${String(rows).padStart(8)} rows${
          result.complete ? "" : " (capped)"
        }: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, max ${result.max.toFixed(1)} ms`,
      );
    }
  } finally {
    await relay.stop();
  }
  const worst = Math.max(...results.map((r) => r.max));
  console.log(`listing: slowest page ${worst.toFixed(1)} ms (target: under 100 ms)`);
  if (values.json) {
    writeFileSync(values.json, JSON.stringify({ recipients: RECIPIENTS, limit: LIMIT, results }, null, 2));
  }
}

try {
  await main();
} finally {
  rmSync(run, { recursive: true, force: true });
}
