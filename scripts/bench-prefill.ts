/**
 * Pre-fill a relay database (already migrated: `relay migrate`) with N
 * recipients that are queued but not due, for the deep-queue benchmark
 * (issue 4: cost per message with 10,000 and with 1,000,000 recipients
 * queued). Run by scripts/bench-run.ts before it starts the relay; usable by
 * hand too:
 *
 *   bun scripts/bench-prefill.ts PATH/relay.db N [--per-message 10] [--domains 10000] [--domain NAME] [--due-now]
 *                                [--no-events] [--explain]
 *
 * What it writes, with plain SQL in ONE transaction (recursive CTEs, INSERT
 * ... SELECT; 1,000,000 recipients take seconds, not minutes):
 *   - ceil(N / per-message) messages with a small shared body, ids that
 *     sort before any id the relay makes now (so they look older, and new
 *     messages append to the indexes as they would on a real node);
 *   - N recipients, state 'queued', next_attempt_at = now + 30 days + a
 *     spread of up to one day (so the due index holds N distinct keys),
 *     spread over `domains` domains (or all at `--domain NAME`); with
 *     --due-now, due now instead (the rate-limited case: a backlog waiting
 *     for one destination);
 *   - one 'received' event per recipient (what enqueue writes), unless
 *     --no-events.
 * Prints one JSON line: counts, seconds, file size; with --explain also the
 * query plan and time of the scheduler's queries on the result (copies of
 * the SQL in src/queue/store.ts and dsn-store.ts: releaseLeases at start and
 * stop, nextDueAt when idle, claimDue on every wake, pendingDsns
 * (DsnStore.pending) every second), so that a full scan shows up by name.
 */
import { createClient } from "@libsql/client";
import { statSync } from "node:fs";
import { PENDING_DSN_MESSAGES } from "../src/queue/dsn-store.ts";
import { CLAIM_LANE } from "../src/queue/store.ts";

function usage(): never {
  console.error(
    "usage: bun scripts/bench-prefill.ts PATH/relay.db N [--per-message 10] [--domains 10000] [--domain NAME] [--due-now] [--no-events] [--explain]",
  );
  process.exit(2);
}

const argv = process.argv.slice(2);
const path = argv[0];
const n = Number(argv[1]);
if (!path || !Number.isInteger(n) || n < 0) usage();
let perMessage = 10;
let domains = 10_000;
let events = true;
let explain = false;
let oneDomain: string | undefined;
let dueNow = false;
for (let i = 2; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--per-message") perMessage = Number(argv[++i]);
  else if (a === "--domains") domains = Number(argv[++i]);
  else if (a === "--no-events") events = false;
  else if (a === "--explain") explain = true;
  else if (a === "--domain" && /^[a-z0-9.-]+$/.test(argv[i + 1] ?? "")) oneDomain = argv[++i];
  else if (a === "--due-now") dueNow = true;
  else usage();
}
if (!(perMessage >= 1) || !(domains >= 1)) usage();

const DAY = 86_400_000;
const now = Date.now();
const dueFrom = dueNow ? now : now + 30 * DAY;
const spread = dueNow ? "0" : `(i * 7919) % ${DAY}`;
const domainOf = oneDomain === undefined ? `'d' || (i % ${domains}) || '.example'` : `'${oneDomain}'`;
const messages = Math.ceil(n / perMessage);
const client = createClient({ url: `file:${path}` });
const t0 = performance.now();
try {
  // This connection only: the relay itself runs with synchronous=FULL.
  for (
    const p of [
      "PRAGMA journal_mode = WAL",
      "PRAGMA synchronous = NORMAL",
      "PRAGMA cache_size = -262144",
      "PRAGMA temp_store = MEMORY",
    ]
  ) {
    await client.execute(p);
  }
  const exists = await client.execute("SELECT count(*) AS c FROM recipients");
  if (Number(exists.rows[0]!.c) !== 0) throw new Error(`${path}: recipients is not empty; pre-fill a fresh database`);
  if (n > 0) {
    // "00PF" + 22 digits: 26 characters like a ULID, sorting before every ULID of this century.
    const id = (expr: string) => `printf('00PF%022d', ${expr})`;
    const statements = [
      {
        sql: `WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i + 1 < ?)
              INSERT INTO messages (id, created_at, mail_from, source, client_ip, size, body)
              SELECT ${id("i")}, ? - 3600000 + i % 3600000, 'sender@bench.test', 'smtp', '127.0.0.1', 64,
                     CAST('Subject: queued for later' || char(13, 10, 13, 10) || 'deep-queue benchmark filler ' || (i % 8) AS BLOB)
              FROM m`,
        args: [messages, now],
      },
      {
        sql: `WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < ?)
              INSERT INTO recipients (message_id, address, domain, state, attempts, next_attempt_at, updated_at)
              SELECT ${id(`i / ${perMessage}`)}, 'u' || i || '@' || ${domainOf}, ${domainOf},
                     'queued', 0, ? + ${spread}, ?
              FROM r`,
        args: [n, dueFrom, now],
      },
      ...(events
        ? [
          {
            sql: `INSERT INTO events (at, type, message_id, recipient, data)
                    SELECT ?, 'received', message_id, address, '{"mail_from":"sender@bench.test","source":"smtp","size":64}'
                    FROM recipients ORDER BY id`,
            args: [now],
          },
        ]
        : []),
    ];
    await client.batch(statements, "write");
    await client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
    // No ANALYZE: the relay never runs it, so its planner works without statistics here as in production.
  }
  const counts = await client.execute(
    "SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM recipients) AS recipients, (SELECT count(*) FROM events) AS events",
  );
  const seconds = (performance.now() - t0) / 1000;
  const row = counts.rows[0]!;
  const queries = explain ? await explainQueries() : undefined;
  console.log(
    JSON.stringify({
      path,
      recipients: Number(row.recipients),
      messages: Number(row.messages),
      events: Number(row.events),
      domains: oneDomain === undefined ? Math.min(domains, n) : 1,
      seconds: Number(seconds.toFixed(2)),
      bytes: statSync(path).size,
      ...(queries ? { queries } : {}),
    }),
  );
} finally {
  client.close();
}

/**
 * The scheduler's recurring queries, as src/queue/store.ts writes them, each
 * with its plan and its time (mean of 5 runs; the writes in a transaction
 * that is rolled back, so the database stays as pre-filled).
 */
async function explainQueries(): Promise<{ name: string; plan: string[]; ms: number }[]> {
  const at = Date.now();
  const queries: { name: string; sql: string; args: (string | number)[] }[] = [
    {
      name: "releaseLeases",
      sql: `UPDATE recipients SET lease_owner = NULL, next_attempt_at = MIN(next_attempt_at, ?)
            WHERE lease_owner = ? AND state IN ('queued', 'deferred')`,
      args: [at, "bench"],
    },
    {
      name: "nextDueAt",
      sql: "SELECT MIN(next_attempt_at) AS due FROM recipients WHERE state IN ('queued', 'deferred')",
      args: [],
    },
    {
      name: "claimDue",
      sql: CLAIM_LANE,
      args: ["bench", at + 1_800_000, "transactional", at, 500],
    },
    {
      name: "pendingDsns",
      sql: PENDING_DSN_MESSAGES,
      args: [at, at, 200],
    },
  ];
  const out: { name: string; plan: string[]; ms: number }[] = [];
  for (const q of queries) {
    const plan = await client.execute({ sql: `EXPLAIN QUERY PLAN ${q.sql}`, args: q.args });
    const tx = await client.transaction("write");
    const t = performance.now();
    for (let i = 0; i < 5; i++) await tx.execute({ sql: q.sql, args: q.args });
    const ms = (performance.now() - t) / 5;
    await tx.rollback();
    out.push({ name: q.name, plan: plan.rows.map((r) => String(r.detail)), ms: Number(ms.toFixed(3)) });
  }
  return out;
}
