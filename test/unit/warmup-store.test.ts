import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { startPeriodic } from "../../src/app/periodic.ts";
import { openWarmup, writeWarmup, writeWarmupJob } from "../../src/app/warmup.ts";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import type { Warmup } from "../../src/shaping/rules.ts";
import { shippedShaping } from "../../src/shaping/shipped.ts";
import type { WarmupLedger, WarmupOutcome } from "../../src/shaping/warmup-ledger.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

/** The warmup state across restarts: written to a real libSQL file, read back by the next run's ledger. */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const IP = "192.0.2.7";
const shipped: Warmup = { ...shippedShaping().rules.warmup!, enabled: true };
const quiet = () => {};

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A node's database: a file in a directory of its own, opened again by each "run". */
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "relay-warmup-"));
  dirs.push(dir);
  return dir;
}

async function open(dir: string, now: number): Promise<Database> {
  const database = await openDatabase(`file:${join(dir, "relay.db")}`);
  await applyMigrations(database.client, migrationFiles(), now);
  return database;
}

/** Send as fast as the ledger allows until `until`; the nth message's outcome is `outcome(n)`. */
async function sendUntil(
  ledger: WarmupLedger,
  clock: FakeClock,
  until: number,
  outcome: (n: number) => WarmupOutcome = () => "delivered",
) {
  for (let n = 0;; n++) {
    const at = ledger.nextSendAt(IP, "google", "transactional", clock.now());
    if (at >= until) break;
    await clock.advance(at - clock.now());
    ledger.sent(IP, "google", "transactional", at);
    ledger.outcome(IP, "google", outcome(n), at);
  }
  await clock.advance(until - clock.now());
}

describe("the warmup state survives a restart", () => {
  it("a ledger made from the stored rows goes on where the last one stopped, caps included", async () => {
    const dir = dataDir();
    const clock = new FakeClock();
    const start = clock.now();
    let database = await open(dir, start);
    const first = await openWarmup(shipped, database, quiet);
    // A clean first day (promoted), then most of a second day's cap, at 10% deferrals (held so far).
    await sendUntil(first.ledger, clock, start + DAY);
    await sendUntil(first.ledger, clock, start + DAY + 10 * HOUR, (n) => (n % 10 === 0 ? "deferred" : "delivered"));
    first.ledger.outcome(IP, "google", "complained", clock.now());
    first.ledger.sent(undefined, undefined, "bulk", clock.now());
    await writeWarmup(first);
    const before = first.ledger.report(clock.now());
    await database.close();

    database = await open(dir, clock.now());
    const second = await openWarmup(shipped, database, quiet);
    assert.deepEqual(second.ledger.report(clock.now()), before);
    const google = before.find((e) => e.provider === "google")!;
    assert.equal(google.step, 1, "promoted once");
    assert.equal(google.day.sent, shipped.default.steps[1]!.daily, "the day's cap was used before the restart");
    assert.equal(google.window.complained, 1);
    assert.deepEqual(google.next && [google.next.action, google.next.reason], [
      "demote",
      "complaint rate 1% is above demote_above's 0.3%",
    ]);
    // The restart does not reset the day's count: the next message waits for the next day.
    assert.equal(second.ledger.nextSendAt(IP, "google", "transactional", clock.now()), start + 2 * DAY);
    await database.close();
  });

  it("in a fleet's shared state a node goes on with its own IP's rows only", async () => {
    const clock = new FakeClock();
    const database = await open(dataDir(), clock.now());
    const both = await openWarmup(shipped, database, quiet);
    for (const ip of [IP, "192.0.2.8"]) both.ledger.sent(ip, "google", "transactional", clock.now());
    await writeWarmup(both);
    const mine = await openWarmup(shipped, database, quiet, IP);
    assert.deepEqual(mine.ledger.report(clock.now()).map((e) => e.sourceIp), [IP]);
    const everyone = await openWarmup(shipped, database, quiet);
    assert.deepEqual(everyone.ledger.report(clock.now()).map((e) => e.sourceIp).sort(), [IP, "192.0.2.8"]);
    await database.close();
  });

  it("what changed is written every 5 seconds, and only that; a failed write is written with the next one", async () => {
    const dir = dataDir();
    const clock = new FakeClock();
    const database = await open(dir, clock.now());
    const warmup = await openWarmup(shipped, database, quiet);
    const saved: number[] = [];
    const store = warmup.store;
    let failing = false;
    const counting = {
      ledger: warmup.ledger,
      store: Object.assign(Object.create(store), {
        save: async (rows: Parameters<typeof store.save>[0]) => {
          if (failing) throw new Error("the database is away");
          saved.push(rows.length);
          await store.save(rows);
        },
      }),
    };
    const job = startPeriodic(writeWarmupJob(counting), quiet, clock);
    warmup.ledger.sent(IP, "google", "transactional", clock.now());
    await clock.advance(5_000);
    assert.deepEqual((await store.load()).map((r) => r.sent), [1]);
    await clock.advance(5_000);
    assert.deepEqual(saved, [1], "nothing changed, nothing written");

    failing = true;
    warmup.ledger.sent(IP, "google", "transactional", clock.now());
    await clock.advance(5_000);
    failing = false;
    await clock.advance(5_000);
    assert.deepEqual((await store.load()).map((r) => r.sent), [2], "written by the next run");
    await job.stop();
    await database.close();
  });
});
