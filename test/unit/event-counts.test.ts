/**
 * The dashboard's chart counts (src/queue/event-counts.ts): events per type
 * and time bucket, found by a binary search over the events' ids rather than
 * a scan of the whole log.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Database } from "../../src/queue/database.ts";
import { COUNT_EVENTS, EventCounts } from "../../src/queue/event-counts.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-event-counts-");

const T0 = 1_700_000_000_000;
const MINUTE = 60_000;

async function fresh(): Promise<Database> {
  return (await temporaryDatabase(T0)).database;
}

/** `count` events of `type`, the first at `from`, then one every `stepMs`, in id order. */
async function insert(database: Database, type: string, count: number, from: number, stepMs: number) {
  await database.client.execute({
    sql: `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
          INSERT INTO events (at, type, message_id, recipient, data) SELECT ? + i * ?, ?, NULL, NULL, '{}' FROM n`,
    args: [count, from, stepMs, type],
  });
}

describe("EventCounts.perBucket", () => {
  it("counts each type per bucket inside the window only, empty buckets included", async () => {
    const database = await fresh();
    await insert(database, "delivered", 5, T0 - 10 * MINUTE, 1000); // before the window
    await insert(database, "received", 3, T0, 1000); // minute 0
    await insert(database, "delivered", 2, T0 + 30_000, 10_000); // minute 0
    await insert(database, "bounced", 1, T0 + 2 * MINUTE + 5, 0); // minute 2
    await insert(database, "deferred", 4, T0 + 3 * MINUTE, 0); // at `to`: outside
    const buckets = await new EventCounts(database).perBucket(T0, T0 + 3 * MINUTE, MINUTE);
    assert.deepEqual(buckets, [
      { start: T0, counts: { received: 3, delivered: 2 } },
      { start: T0 + MINUTE, counts: {} },
      { start: T0 + 2 * MINUTE, counts: { bounced: 1 } },
    ]);
  });

  it("answers empty buckets for an empty log and for a window after every event", async () => {
    const database = await fresh();
    const counts = new EventCounts(database);
    assert.deepEqual(await counts.perBucket(T0, T0 + 2 * MINUTE, MINUTE), [
      { start: T0, counts: {} },
      { start: T0 + MINUTE, counts: {} },
    ]);
    await insert(database, "delivered", 10, T0 - MINUTE, 1000);
    assert.deepEqual(await counts.perBucket(T0, T0 + MINUTE, MINUTE), [{ start: T0, counts: {} }]);
  });

  it("finds the window's first event among 200,000 (and with gaps left by purged messages)", async () => {
    const database = await fresh();
    await insert(database, "delivered", 150_000, T0 - 150_000 * 100, 100);
    await database.client.execute("DELETE FROM events WHERE id % 7 = 3"); // retention purges leave holes
    const kept = await database.client.execute(
      { sql: "SELECT count(*) AS n FROM events WHERE at >= ?", args: [T0 - 5000] },
    );
    await insert(database, "received", 50_000, T0, 10);
    const [bucket] = await new EventCounts(database).perBucket(T0 - 5000, T0 + 500_000, 505_000);
    assert.deepEqual(bucket, { start: T0 - 5000, counts: { delivered: Number(kept.rows[0]!.n), received: 50_000 } });
  });

  it("reads the rows of the window through the primary key, never the whole table", async () => {
    const database = await fresh();
    const plan = await database.client.execute({
      sql: `EXPLAIN QUERY PLAN ${COUNT_EVENTS}`,
      args: [T0, MINUTE, T0 + MINUTE],
    });
    const details = plan.rows.map((r) => String(r.detail));
    assert.ok(
      details.some((d) => /SEARCH events USING INTEGER PRIMARY KEY \(rowid>\?\)/.test(d)),
      details.join("\n"),
    );
    // Only min(id)/max(id), which SQLite answers from the ends of the b-tree, may name the table without a search.
    const scans = details.filter((d) => /^SCAN events\b/.test(d));
    assert.deepEqual(scans, [], details.join("\n"));
  });

  it("refuses a bucket that is not a positive integer", async () => {
    const counts = new EventCounts(await fresh());
    await assert.rejects(counts.perBucket(T0, T0 + MINUTE, 0), RangeError);
    await assert.rejects(counts.perBucket(T0, T0 + MINUTE, 1.5), RangeError);
  });
});
