/**
 * The overview's chart data (src/dashboard/rates.ts): the last hour by
 * minute and the last day by hour, from the real event log, counting again
 * only what has not settled.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EventRates, HOUR_MS, MINUTE_MS } from "../../src/dashboard/rates.ts";
import type { Database } from "../../src/queue/database.ts";
import { EventCounts } from "../../src/queue/event-counts.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-rates-");

/** 30 s into an hour. */
const NOW = 1_700_002_830_000;
const HOUR_START = Math.floor(NOW / HOUR_MS) * HOUR_MS;
const MINUTE_START = Math.floor(NOW / MINUTE_MS) * MINUTE_MS;

async function fresh(): Promise<Database> {
  return (await temporaryDatabase(NOW)).database;
}

async function event(database: Database, type: string, at: number) {
  await database.client.execute({
    sql: "INSERT INTO events (at, type, message_id, recipient, data) VALUES (?, ?, NULL, NULL, '{}')",
    args: [at, type],
  });
}

/** Counts the calls and the minutes each call counted, around the real EventCounts. */
function counted(database: Database) {
  const real = new EventCounts(database);
  const calls: { from: number; to: number }[] = [];
  return {
    calls,
    perBucket: (from: number, to: number, bucketMs: number) => {
      calls.push({ from, to });
      return real.perBucket(from, to, bucketMs);
    },
  };
}

describe("EventRates", () => {
  it("puts each event in its minute of the last hour and its hour of the last day", async () => {
    const database = await fresh();
    await event(database, "received", NOW - 1000); // this minute, this hour
    await event(database, "delivered", NOW - 1000);
    await event(database, "bounced", MINUTE_START - 30_000); // the minute before (and the hour before)
    await event(database, "deferred", HOUR_START - 1); // the hour before, that minute too
    await event(database, "delivered", HOUR_START - 23 * HOUR_MS); // the day's first hour
    await event(database, "delivered", HOUR_START - 23 * HOUR_MS - 1); // too old
    const rates = await new EventRates(new EventCounts(database), new FakeClock(NOW)).current();

    assert.equal(rates.hour.starts.length, 60);
    assert.equal(rates.hour.starts.at(-1), MINUTE_START);
    assert.equal(rates.hour.counts.received.at(-1), 1);
    assert.equal(rates.hour.counts.delivered.at(-1), 1);
    assert.equal(rates.hour.counts.bounced.at(-2), 1);
    const deferredMinute = rates.hour.starts.indexOf(Math.floor((HOUR_START - 1) / MINUTE_MS) * MINUTE_MS);
    assert.equal(rates.hour.counts.deferred[deferredMinute], 1);
    assert.equal(rates.hour.counts.delivered.reduce((a, b) => a + b), 1);

    assert.equal(rates.day.starts.length, 24);
    assert.deepEqual([rates.day.starts[0], rates.day.starts.at(-1)], [HOUR_START - 23 * HOUR_MS, HOUR_START]);
    assert.equal(rates.day.counts.received.at(-1), 1);
    assert.equal(rates.day.counts.bounced.at(-2), 1, "the minute before this one is in the hour before");
    assert.equal(rates.day.counts.deferred.at(-2), 1);
    assert.deepEqual([rates.day.counts.delivered[0], rates.day.counts.delivered.at(-1)], [1, 1]);
    assert.equal(rates.day.counts.delivered.reduce((a, b) => a + b), 2);
  });

  it("counts settled minutes once: the next load counts from the last settled minute on", async () => {
    const database = await fresh();
    const clock = new FakeClock(NOW);
    const counts = counted(database);
    const rates = new EventRates(counts, clock);
    await event(database, "delivered", NOW - 2 * HOUR_MS);
    await rates.current();
    assert.deepEqual(counts.calls[0], { from: HOUR_START - 23 * HOUR_MS, to: MINUTE_START + MINUTE_MS });

    await clock.advance(2 * MINUTE_MS);
    await event(database, "delivered", clock.now() - 1000);
    const later = await rates.current();
    // 30 s into the minute when first loaded, so the minute before it had settled; the current one had not.
    assert.deepEqual(counts.calls[1], { from: MINUTE_START, to: MINUTE_START + 3 * MINUTE_MS });
    assert.equal(later.day.counts.delivered.reduce((a, b) => a + b), 2, "the settled minutes are kept");
    assert.equal(later.hour.counts.delivered.at(-1), 1);
  });

  it("shares one count between loads that overlap", async () => {
    const database = await fresh();
    const counts = counted(database);
    const rates = new EventRates(counts, new FakeClock(NOW));
    const [a, b] = await Promise.all([rates.current(), rates.current()]);
    assert.equal(a, b);
    assert.equal(counts.calls.length, 1);
  });

  it("starts over after a pause longer than the day", async () => {
    const database = await fresh();
    const clock = new FakeClock(NOW);
    const counts = counted(database);
    const rates = new EventRates(counts, clock);
    await rates.current();
    await clock.advance(2 * 24 * HOUR_MS);
    await rates.current();
    const dayFrom = Math.floor(clock.now() / HOUR_MS) * HOUR_MS - 23 * HOUR_MS;
    assert.equal(counts.calls[1]!.from, dayFrom);
  });
});
