/**
 * The delivery scheduler on a fake clock, with a real queue and a scripted
 * transport: how it is woken, and what shutdown does with deliveries still
 * in flight.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CLOSED_SETTLE_MS, Scheduler, type Plan } from "../../src/delivery/scheduler.ts";
import { openDatabase, type Database } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { ScriptedTransport } from "../helpers/scripted-transport.ts";
import { waitUntil } from "../helpers/wait-until.ts";

const HOUR = 3_600_000;
const GRACE_MS = 10_000;

const dirs: string[] = [];
const opened: Database[] = [];
after(async () => {
  for (const d of opened) await d.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function harness() {
  const dir = mkdtempSync(join(tmpdir(), "relay-scheduler-"));
  dirs.push(dir);
  const database = await openDatabase(`file:${join(dir, "relay.db")}`);
  opened.push(database);
  const clock = new FakeClock();
  await applyMigrations(database.client, migrationFiles(), clock.now());
  const store = new QueueStore(database, await BodySpool.open(join(dir, "spool")), clock, "node-a");
  const transport = new ScriptedTransport();
  const logged: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const destination: Plan = { kind: "destination", key: "mx.test", transport: () => transport };
  const scheduler = new Scheduler({
    store,
    clock,
    retry: { schedule: [HOUR], maxQueueTime: 5 * 24 * HOUR },
    hostname: "relay.test",
    log: (level, message, fields) => logged.push({ level, message, fields }),
    plan: async () => destination,
    limits: { maxConnections: 10, maxMessagesPerConnection: 100, idleMs: HOUR },
  });
  const body = new TextEncoder().encode("Subject: test\r\n\r\nhello\r\n");
  const enqueue = (...addresses: string[]) =>
    store.enqueue({ mailFrom: "a@sender.test", recipients: addresses.map((address) => ({ address, domain: address.split("@")[1]! })), body, source: "smtp" });
  /** Each recipient's state, and whether it is leased. */
  const recipients = async () =>
    Object.fromEntries(
      (await database.client.execute("SELECT address, state, lease_owner FROM recipients ORDER BY id")).rows.map((r) => [
        String(r.address),
        `${r.state}${r.lease_owner === null ? "" : " leased"}`,
      ]),
    );
  const lastEvent = async (address: string) =>
    (await database.client.execute({ sql: "SELECT type, data FROM events WHERE recipient = ? ORDER BY id DESC LIMIT 1", args: [address] })).rows[0];
  return { clock, database, transport, scheduler, logged, enqueue, recipients, lastEvent };
}

describe("waking the scheduler", () => {
  it("a wake while it is busy, not asleep, is not lost: stop() right after start() returns without a poll", async () => {
    const h = await harness();
    await h.scheduler.start();
    let stopped = false;
    void h.scheduler.stop(0).then(() => (stopped = true));
    await waitUntil(() => ({ stopped, pending: h.clock.pending }), (s) => s.stopped, { what: "stop() to return", timeout: 10_000 });
  });

  it("a message enqueued while it looks for work goes out without waiting for the next poll", async () => {
    const h = await harness();
    await h.scheduler.start();
    await h.enqueue("a@dest.test");
    h.scheduler.wake();
    await waitUntil(h.recipients, (s) => s["a@dest.test"] === "delivered", { what: "the message delivered", timeout: 10_000 });
    await h.scheduler.stop(0);
  });
});

describe("shutdown", () => {
  it("waits for a delivery in flight, and returns as soon as its outcome is recorded", async () => {
    const h = await harness();
    const slow = Promise.withResolvers<void>();
    h.transport.gate = slow.promise;
    await h.enqueue("a@dest.test");
    await h.scheduler.start();
    await waitUntil(() => h.transport.sending, (n) => n === 1, { what: "a send in progress" });
    const started = h.clock.now();

    const stopped = h.scheduler.stop(GRACE_MS);
    await h.clock.timerSet(GRACE_MS);
    slow.resolve();
    await stopped;
    assert.equal(h.clock.now(), started, "no time had to pass");
    assert.deepEqual(await h.recipients(), { "a@dest.test": "delivered" });
  });

  it("closes a delivery still in flight once the grace period is over; it is deferred, not lost", async () => {
    const h = await harness();
    h.transport.gate = new Promise(() => undefined);
    await h.enqueue("a@dest.test");
    await h.scheduler.start();
    await waitUntil(() => h.transport.sending, (n) => n === 1, { what: "a send in progress" });

    const stopped = h.scheduler.stop(GRACE_MS);
    await h.clock.timerSet(GRACE_MS);
    await h.clock.advance(GRACE_MS - 1);
    assert.equal(h.transport.connections[0]!.usable, true, "not closed within the grace period");
    await h.clock.advance(1);
    await stopped;
    assert.equal(h.transport.connections[0]!.usable, false);
    assert.deepEqual(await h.recipients(), { "a@dest.test": "deferred" });
    const event = await h.lastEvent("a@dest.test");
    assert.equal(event?.type, "deferred");
    assert.match(String(event?.data), /421 4\.4\.2 connection closed/);
  });

  it("a delivery that does not end even when closed keeps its recipient: the lease is released, and it is due again", async () => {
    const h = await harness();
    h.transport.gate = new Promise(() => undefined);
    h.transport.ignoresClose = true;
    await h.enqueue("a@dest.test");
    await h.scheduler.start();
    await waitUntil(() => h.transport.sending, (n) => n === 1, { what: "a send in progress" });

    const stopped = h.scheduler.stop(GRACE_MS);
    await h.clock.timerSet(GRACE_MS);
    await h.clock.advance(GRACE_MS);
    assert.equal(h.transport.connections[0]!.usable, false, "closed after the grace period");
    assert.deepEqual(await h.recipients(), { "a@dest.test": "queued leased" });
    // The closed connections get a little longer to hand back their outcomes.
    await h.clock.timerSet(CLOSED_SETTLE_MS);
    await h.clock.advance(CLOSED_SETTLE_MS);
    await stopped;
    assert.deepEqual(await h.recipients(), { "a@dest.test": "queued" });
    const due = await h.database.client.execute("SELECT next_attempt_at FROM recipients");
    assert.ok(Number(due.rows[0]!.next_attempt_at) <= h.clock.now(), "due now");
  });
});
