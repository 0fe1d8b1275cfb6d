/**
 * The delivery scheduler on a fake clock, with a real queue and a scripted
 * transport: how many recipients it has in flight, how it waits for routing
 * plans, and what shutdown does with deliveries still in flight.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  bulkInFlightCap,
  CLOSED_SETTLE_MS,
  IDLE_POLL_MS,
  type Plan,
  PLAN_WAIT_MS,
  Scheduler,
} from "../../src/delivery/scheduler.ts";
import type { Lane } from "../../src/core/lane.ts";
import { type Database, openDatabase } from "../../src/queue/database.ts";
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

const LIMITS = { maxConnections: 10, maxMessagesPerConnection: 100, idleMs: HOUR };

async function harness(
  options: { maxInFlight?: number; plan?: (domain: string, destination: Plan) => Promise<Plan> } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "relay-scheduler-"));
  dirs.push(dir);
  const database = await openDatabase(`file:${join(dir, "relay.db")}`);
  opened.push(database);
  const clock = new FakeClock();
  await applyMigrations(database.client, migrationFiles(), clock.now());
  const store = new QueueStore(database, await BodySpool.open(join(dir, "spool")), clock, "node-a");
  const transport = new ScriptedTransport();
  const logged: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const destination: Plan = {
    kind: "destination",
    key: "mx.test",
    limits: LIMITS,
    retry: [HOUR],
    transport: () => transport,
  };
  const scheduler = new Scheduler({
    store,
    clock,
    retry: { schedule: [HOUR], maxQueueTime: 5 * 24 * HOUR },
    greylistRetry: 5 * 60_000,
    hostname: "relay.test",
    log: (level, message, fields) => logged.push({ level, message, fields }),
    plan: (domain) => options.plan?.(domain, destination) ?? Promise.resolve(destination),
    maxInFlight: options.maxInFlight,
  });
  const body = new TextEncoder().encode("Subject: test\r\n\r\nhello\r\n");
  const enqueueIn = (lane: Lane | undefined, addresses: string[]) =>
    store.enqueue({
      mailFrom: "a@sender.test",
      recipients: addresses.map((address) => ({ address, domain: address.split("@")[1]! })),
      body,
      source: "smtp",
      lane,
    });
  const enqueue = (...addresses: string[]) => enqueueIn(undefined, addresses);
  /** Each recipient's state, and whether it is leased. */
  const recipients = async () =>
    Object.fromEntries(
      (await database.client.execute("SELECT address, state, lease_owner FROM recipients ORDER BY id")).rows.map((
        r,
      ) => [
        String(r.address),
        `${r.state}${r.lease_owner === null ? "" : " leased"}`,
      ]),
    );
  const lastEvent = async (address: string) =>
    (await database.client.execute({
      sql: "SELECT type, data FROM events WHERE recipient = ? ORDER BY id DESC LIMIT 1",
      args: [address],
    })).rows[0];
  return { clock, database, transport, scheduler, logged, enqueue, enqueueIn, recipients, lastEvent };
}

const count = (states: Record<string, string>, state: string) =>
  Object.values(states).filter((s) => s === state).length;

describe("waking the scheduler", () => {
  it("a wake while it is busy, not asleep, is not lost: stop() right after start() returns without a poll", async () => {
    const h = await harness();
    await h.scheduler.start();
    let stopped = false;
    void h.scheduler.stop(0).then(() => (stopped = true));
    await waitUntil(() => ({ stopped, pending: h.clock.pending }), (s) => s.stopped, {
      what: "stop() to return",
      timeout: 10_000,
    });
  });

  it("a message enqueued while it looks for work goes out without waiting for the next poll", async () => {
    const h = await harness();
    await h.scheduler.start();
    await h.enqueue("a@dest.test");
    h.scheduler.wake();
    await waitUntil(h.recipients, (s) => s["a@dest.test"] === "delivered", {
      what: "the message delivered",
      timeout: 10_000,
    });
    await h.scheduler.stop(0);
  });
});

describe("a queue that fails", () => {
  it("a failure to find the next due time is logged, and the scheduler polls on", async () => {
    const h = await harness();
    await h.scheduler.start();
    await h.clock.timerSet(IDLE_POLL_MS);
    await h.database.close();
    await h.clock.advance(IDLE_POLL_MS);
    await h.clock.timerSet(IDLE_POLL_MS);
    const errors = h.logged.filter((e) => e.level === "error").map((e) => `${e.message}: ${e.fields?.error}`);
    assert.ok(
      errors.includes("finding the next due time failed; polling instead: Error: database is closed"),
      errors.join("\n"),
    );
  });
});

describe("the scheduler's in-flight cap", () => {
  it("never has more recipients leased than the cap; each settled outcome makes room for the next at once", async () => {
    const h = await harness({ maxInFlight: 2 });
    const slow = Promise.withResolvers<void>();
    h.transport.gate = slow.promise;
    for (let i = 1; i <= 5; i++) await h.enqueue(`r${i}@dest.test`);
    await h.scheduler.start();
    await waitUntil(() => h.transport.sending, (n) => n === 2, { what: "two sends in progress" });

    // At the cap the scheduler sleeps, and a poll that finds it still at the cap claims nothing.
    await h.clock.timerSet(IDLE_POLL_MS);
    await h.clock.advance(IDLE_POLL_MS);
    await h.clock.timerSet(IDLE_POLL_MS);
    const states = await h.recipients();
    assert.equal(count(states, "queued leased"), 2, JSON.stringify(states));
    assert.equal(count(states, "queued"), 3);

    slow.resolve();
    await waitUntil(h.recipients, (s) => count(s, "delivered") === 5, { what: "every recipient delivered" });
    assert.equal(h.transport.peakSending, 2);
    await h.scheduler.stop(0);
  });
});

describe("priority lanes in flight", () => {
  it("bulk never takes the slots kept for transactional mail: with bulk waiting at its cap, transactional mail is claimed at once", async () => {
    const h = await harness({ maxInFlight: 10 });
    assert.equal(bulkInFlightCap(10), 9);
    const slow = Promise.withResolvers<void>();
    h.transport.gate = slow.promise;
    for (let i = 1; i <= 20; i++) await h.enqueueIn("bulk", [`bulk${i}@dest.test`]);
    await h.scheduler.start();
    await waitUntil(() => h.transport.sending, (n) => n === 9, { what: "nine bulk sends in progress" });

    // Bulk due now but no room for it: the scheduler sleeps until a poll, not in a loop of zero-length sleeps.
    await h.clock.timerSet(IDLE_POLL_MS);
    assert.ok(!h.clock.pending.includes(0), `pending timers: ${h.clock.pending}`);
    assert.equal(count(await h.recipients(), "queued leased"), 9);

    await h.enqueueIn("transactional", ["receipt@dest.test"]);
    h.scheduler.wake();
    await waitUntil(h.recipients, (s) => s["receipt@dest.test"] === "queued leased", {
      what: "the transactional recipient claimed",
    });
    await waitUntil(() => h.transport.sending, (n) => n === 10, { what: "its send in progress beside the bulk ones" });

    slow.resolve();
    await waitUntil(h.recipients, (s) => count(s, "delivered") === 21, { what: "every recipient delivered" });
    assert.equal((await h.lastEvent("receipt@dest.test"))?.type, "delivered");
    assert.equal(JSON.parse(String((await h.lastEvent("receipt@dest.test"))?.data)).priority, "transactional");
    assert.equal(JSON.parse(String((await h.lastEvent("bulk1@dest.test"))?.data)).priority, "bulk");
    await h.scheduler.stop(0);
  });
});

describe("routing a batch", () => {
  it("the batch waits for every domain's plan; once the wait is over, each domain goes out as soon as its own plan is known", async () => {
    const slowPlan = Promise.withResolvers<Plan>();
    const h = await harness({
      plan: (domain, destination) => (domain === "slow.test" ? slowPlan.promise : Promise.resolve(destination)),
    });
    await h.enqueue("a@fast.test");
    await h.enqueue("b@slow.test");
    await h.scheduler.start();
    await h.clock.timerSet(PLAN_WAIT_MS);
    await h.clock.advance(PLAN_WAIT_MS - 1);
    assert.equal(h.transport.opened, 0, "fast.test waits with the batch");

    await h.clock.advance(1);
    await waitUntil(h.recipients, (s) => s["a@fast.test"] === "delivered", { what: "fast.test delivered on its own" });
    assert.equal((await h.recipients())["b@slow.test"], "queued leased");

    const { transport } = h;
    slowPlan.resolve({
      kind: "destination",
      key: "mx.test",
      limits: LIMITS,
      retry: [HOUR],
      transport: () => transport,
    });
    await waitUntil(h.recipients, (s) => s["b@slow.test"] === "delivered", {
      what: "slow.test delivered once planned",
    });
    await h.scheduler.stop(0);
  });

  it("when every plan is in within the wait, two domains at one MX site share one transaction, and the wait's timer is cleared", async () => {
    const h = await harness();
    await h.enqueue("a@one.test", "b@two.test");
    await h.scheduler.start();
    await waitUntil(h.recipients, (s) => count(s, "delivered") === 2, { what: "both recipients delivered" });
    assert.equal(h.transport.connections.length, 1);
    assert.equal(h.transport.connections[0]!.sent.length, 1, "one transaction");
    assert.ok(!h.clock.pending.includes(PLAN_WAIT_MS), `pending timers: ${h.clock.pending}`);
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

describe("a rate-limited destination", () => {
  const SPACING = HOUR / 100;
  const pacedPlan = (domain: string, unpaced: Plan): Promise<Plan> =>
    Promise.resolve(
      domain === "slow.test" && unpaced.kind === "destination"
        ? { ...unpaced, key: "mx.slow", pacing: { messages: { spacing: SPACING }, connections: { spacing: 0 } } }
        : unpaced,
    );

  it("hands back what cannot go soon with its turn: no attempt, no event, no lease; others go on", async () => {
    const h = await harness({ plan: pacedPlan });
    for (let i = 0; i < 50; i++) await h.enqueue(`r${i}@slow.test`);
    await h.enqueue("fast@dest.test");
    await h.scheduler.start();
    await waitUntil(h.recipients, (s) => s["fast@dest.test"] === "delivered" && count(s, "queued") === 49, {
      what: "the fast one delivered, 49 waiting unleased",
      timeout: 10_000,
    });
    const rows = (await h.database.client.execute(
      "SELECT attempts, turn_at, next_attempt_at FROM recipients WHERE domain = 'slow.test' AND state = 'queued' ORDER BY turn_at",
    )).rows;
    assert.ok(rows.every((r) => Number(r.attempts) === 0 && r.turn_at !== null && r.turn_at === r.next_attempt_at));
    const turns = rows.map((r) => Number(r.turn_at));
    for (let i = 1; i < turns.length; i++) assert.equal(turns[i]! - turns[i - 1]!, SPACING, "a turn every 36 s");
    const events = (await h.database.client.execute("SELECT type FROM events WHERE recipient LIKE '%@slow.test'")).rows;
    assert.ok(!events.some((e) => e.type === "deferred"), "waiting for a turn is not a deferral");
    await h.scheduler.stop(0);
  });

  it("a recipient whose queue time is over while it waits for its turn expires, with its event", async () => {
    const h = await harness({ plan: pacedPlan });
    for (let i = 0; i < 50; i++) await h.enqueue(`r${i}@slow.test`);
    await h.database.client.execute({ sql: "UPDATE messages SET created_at = created_at - ?", args: [6 * 24 * HOUR] });
    await h.scheduler.start();
    await waitUntil(h.recipients, (s) => count(s, "expired") === 49, { what: "49 expired", timeout: 10_000 });
    const last = await h.lastEvent("r49@slow.test");
    assert.equal(last?.type, "expired");
    assert.equal(JSON.parse(String(last?.data)).category, "message-expired");
    await h.scheduler.stop(0);
  });
});
