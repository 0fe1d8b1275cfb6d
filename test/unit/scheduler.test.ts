/**
 * The delivery scheduler on a fake clock, with a real queue and a scripted
 * transport: how many recipients it has in flight, how it waits for routing
 * plans, and what shutdown does with deliveries still in flight.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  bulkInFlightCap,
  CLOSED_SETTLE_MS,
  IDLE_POLL_MS,
  PLAN_WAIT_MS,
  Scheduler,
  type SchedulerDeps,
} from "../../src/delivery/scheduler.ts";
import type { Lane } from "../../src/core/lane.ts";
import type { Plan } from "../../src/delivery/plan.ts";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { reply } from "../../src/core/reply.ts";
import { classifyReply } from "../../src/delivery/classify.ts";
import { DestinationUnreachable } from "../../src/delivery/work.ts";
import { sandboxShaping } from "../../src/delivery/shaping.ts";
import { shippedShaping } from "../../src/shaping/shipped.ts";
import { SettingsStore } from "../../src/queue/settings.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { DeliveryJournal } from "../../src/queue/delivery-journal.ts";
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
const SHAPING = { ...sandboxShaping(shippedShaping().rules), limits: LIMITS };

/** A plan to the destination at `key`, under `limits()` when asked (they may change: PUT /v1/shaping). */
function planTo(key: string, transport: ScriptedTransport, limits = () => LIMITS, retry = [HOUR]): Plan {
  return {
    kind: "destination",
    key,
    name: `${key}~test`,
    mxHosts: [key],
    limits: limits(),
    retry,
    shaping: () => {
      const now = limits();
      const own = { connections: now.maxConnections, messagesPerConnection: now.maxMessagesPerConnection };
      return { ...SHAPING, limits: now, own: { ...SHAPING.own, ...own, idleTimeout: now.idleMs } };
    },
    transport: () => transport,
  };
}

async function harness(
  options: {
    maxInFlight?: number;
    plan?: (domain: string, destination: Plan) => Promise<Plan>;
    /** The retry schedule, which is also the pause after failing to reach a destination. */
    schedule?: number[];
    limits?: () => typeof LIMITS;
    perRecipientCopy?: SchedulerDeps["perRecipientCopy"];
  } = {},
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
  const destination = planTo("mx.test", transport, options.limits, options.schedule);
  const newScheduler = (overrides: Partial<SchedulerDeps> = {}) =>
    new Scheduler({
      store,
      settings: new SettingsStore(database),
      clock,
      retry: { schedule: options.schedule ?? [HOUR], maxQueueTime: 5 * 24 * HOUR },
      greylistRetry: 5 * 60_000,
      hostname: "relay.test",
      verpKey: new Uint8Array(32),
      log: (level, message, fields) => logged.push({ level, message, fields }),
      plan: (domain) => options.plan?.(domain, destination) ?? Promise.resolve(destination),
      maxInFlight: options.maxInFlight,
      perRecipientCopy: options.perRecipientCopy,
      ...overrides,
    });
  const scheduler = newScheduler();
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
  /** A recipient's row: state, attempts, whether leased, and when it is due (relative to now). */
  const row = async (address: string) => {
    const [r] = (await database.client.execute({
      sql: "SELECT state, attempts, lease_owner, next_attempt_at, dsn_pending FROM recipients WHERE address = ?",
      args: [address],
    })).rows;
    return {
      state: r!.state,
      attempts: r!.attempts,
      leased: r!.lease_owner !== null,
      dueIn: Number(r!.next_attempt_at) - clock.now(),
      dsn: r!.dsn_pending,
    };
  };
  return {
    dir,
    clock,
    database,
    store,
    transport,
    scheduler,
    newScheduler,
    logged,
    enqueue,
    enqueueIn,
    recipients,
    lastEvent,
    row,
  };
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

describe("a copy per recipient (List-Unsubscribe on bulk mail)", () => {
  it("sends each bulk recipient a transaction of its own with its copy; other mail shares one with the stored body", async () => {
    const h = await harness({
      perRecipientCopy: {
        applies: (lane) => lane === "bulk",
        copyFor: async (body, recipientId) =>
          new Uint8Array([...new TextEncoder().encode(`X-Copy: ${recipientId}\r\n`), ...body]),
      },
    });
    await h.enqueueIn("bulk", ["a@dest.test", "b@dest.test"]);
    await h.enqueueIn("transactional", ["c@dest.test", "d@dest.test"]);
    await h.scheduler.start();
    await waitUntil(h.recipients, (s) => count(s, "delivered") === 4, { what: "every recipient delivered" });
    const sent = h.transport.payloads.map((
      p,
    ) => [p.recipients.join(","), new TextDecoder().decode(p.body).split("\r\n")[0]]);
    const ids = Object.fromEntries(
      (await h.database.client.execute("SELECT address, id FROM recipients")).rows.map((r) => [r.address, r.id]),
    );
    assert.deepEqual(sent.sort(), [
      ["a@dest.test", `X-Copy: ${ids["a@dest.test"]}`],
      ["b@dest.test", `X-Copy: ${ids["b@dest.test"]}`],
      ["c@dest.test,d@dest.test", "Subject: test"],
    ]);
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
    slowPlan.resolve(planTo("mx.test", transport));
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

/** The destination cannot be reached: every connection is refused. */
function refuse(transport: ScriptedTransport): void {
  const refused = reply(421, "4.3.2", "down for maintenance");
  transport.refuse = new DestinationUnreachable(refused, classifyReply(refused), "mx.test");
}

describe("an operator steering a destination", () => {
  it("suspend: mail routed there waits in the queue untried, no attempt counted, due when it ends; resume sends it at once", async () => {
    const h = await harness();
    await h.scheduler.start();
    const found = await h.scheduler.operator.resolve("dest.test");
    assert.ok(found.found);
    assert.equal(found.name, "mx.test~test", "a domain names the destination its mail goes to");
    await h.scheduler.operator.suspend(found, h.clock.now() + HOUR);

    await h.enqueue("a@dest.test");
    h.scheduler.wake();
    await waitUntil(() => h.row("a@dest.test"), (r) => r.dueIn > 0 && !r.leased, { what: "a held" });
    assert.deepEqual(await h.row("a@dest.test"), {
      state: "queued",
      attempts: 0,
      leased: false,
      dueIn: HOUR,
      dsn: null,
    });
    assert.equal(h.transport.opened, 0, "nothing attempted");
    assert.equal((await h.lastEvent("a@dest.test"))?.type, "received", "no state changed, so no event");
    const [state] = h.scheduler.operator.destinationStates();
    assert.equal(state?.suspension?.until, h.clock.now() + HOUR);
    assert.deepEqual(state?.domains, ["dest.test"]);

    assert.equal(await h.scheduler.operator.resume(found), 1);
    await waitUntil(h.recipients, (s) => s["a@dest.test"] === "delivered", { what: "delivered once resumed" });
    assert.equal((await h.row("a@dest.test")).attempts, 1);
    assert.equal(h.scheduler.operator.destinationStates()[0]?.suspension, undefined);
    await h.scheduler.stop(0);
  });

  it("suspend: the work the destination holds goes back to the queue; a transaction under way finishes", async () => {
    const h = await harness({ limits: () => ({ ...LIMITS, maxConnections: 1 }) });
    const slow = Promise.withResolvers<void>();
    h.transport.gate = slow.promise;
    await h.enqueue("a@dest.test");
    await h.enqueue("b@dest.test");
    await h.scheduler.start();
    await waitUntil(() => h.transport.sending, (n) => n === 1, { what: "a being sent, b waiting for the connection" });
    assert.equal(h.scheduler.operator.destinationStates()[0]?.inFlight, 2);

    const found = await h.scheduler.operator.resolve("mx.test~test");
    assert.ok(found.found, "a destination's name names it");
    await h.scheduler.operator.suspend(found, h.clock.now() + HOUR);
    await waitUntil(() => h.row("b@dest.test"), (r) => !r.leased, { what: "b back in the queue" });
    assert.deepEqual(await h.row("b@dest.test"), {
      state: "queued",
      attempts: 0,
      leased: false,
      dueIn: HOUR,
      dsn: null,
    });
    slow.resolve();
    await waitUntil(h.recipients, (s) => s["a@dest.test"] === "delivered", { what: "a delivered" });
    assert.equal(h.transport.connections.flatMap((c) => c.sent).length, 1, "b was not sent");
    assert.equal(h.scheduler.operator.destinationStates()[0]?.inFlight, 0);
    await h.scheduler.stop(0);
  });

  it("a new suspension replaces the one in force: what it held waits for the new end, and resume finds it", async () => {
    const h = await harness();
    await h.scheduler.start();
    const found = await h.scheduler.operator.resolve("dest.test");
    assert.ok(found.found);
    await h.scheduler.operator.suspend(found, h.clock.now() + HOUR);
    await h.enqueue("a@dest.test");
    h.scheduler.wake();
    await waitUntil(() => h.row("a@dest.test"), (r) => r.dueIn === HOUR && !r.leased, { what: "a held" });

    await h.scheduler.operator.suspend(found, h.clock.now() + 2 * HOUR);
    assert.equal((await h.row("a@dest.test")).dueIn, 2 * HOUR);
    assert.equal(await h.scheduler.operator.resume(found), 1);
    await waitUntil(h.recipients, (s) => s["a@dest.test"] === "delivered", { what: "delivered once resumed" });
    await h.scheduler.stop(0);
  });

  it("no two suspensions end at the same moment, so a resume gives back only what its own suspension held", async () => {
    const plans = new Map<string, Plan>();
    const h = await harness({ plan: async (domain, destination) => plans.get(domain) ?? destination });
    plans.set("other.test", planTo("mx.other", h.transport));
    await h.scheduler.start();
    const [one, two] = [
      await h.scheduler.operator.resolve("dest.test"),
      await h.scheduler.operator.resolve("other.test"),
    ];
    assert.ok(one.found && two.found);
    const until = h.clock.now() + HOUR;
    assert.equal(await h.scheduler.operator.suspend(one, until), until);
    assert.equal(await h.scheduler.operator.suspend(two, until), until + 1);
    await h.enqueue("a@dest.test");
    await h.enqueue("b@other.test");
    h.scheduler.wake();
    await waitUntil(() => h.row("a@dest.test"), (r) => r.dueIn === HOUR && !r.leased, { what: "a held" });
    await waitUntil(() => h.row("b@other.test"), (r) => r.dueIn === HOUR + 1 && !r.leased, { what: "b held" });

    assert.equal(await h.scheduler.operator.resume(two), 1);
    await waitUntil(h.recipients, (s) => s["b@other.test"] === "delivered", { what: "b delivered" });
    assert.equal((await h.row("a@dest.test")).dueIn, HOUR, "a still held");
    await h.scheduler.stop(0);
  });

  it("a suspension outlives a restart", async () => {
    const h = await harness();
    await h.scheduler.start();
    const found = await h.scheduler.operator.resolve("dest.test");
    assert.ok(found.found);
    await h.scheduler.operator.suspend(found, h.clock.now() + HOUR);
    await h.scheduler.stop(0);

    const restarted = h.newScheduler();
    await restarted.start();
    await h.enqueue("a@dest.test");
    restarted.wake();
    await waitUntil(() => h.row("a@dest.test"), (r) => r.dueIn === HOUR && !r.leased, { what: "a held" });
    assert.equal(h.transport.opened, 0);
    assert.equal(restarted.operator.destinationStates()[0]?.suspension?.name, "mx.test~test");
    await restarted.stop(0);
  });

  it("retry: a deferred recipient goes now, and a pause after failing to reach the destination is over", async () => {
    const h = await harness();
    refuse(h.transport);
    await h.enqueue("a@dest.test");
    await h.scheduler.start();
    await waitUntil(() => h.row("a@dest.test"), (r) => r.state === "deferred", { what: "a deferred" });
    assert.ok((await h.row("a@dest.test")).dueIn >= HOUR);
    assert.ok(h.scheduler.operator.destinationStates()[0]?.backoffUntil, "paused");

    h.transport.refuse = undefined;
    const found = await h.scheduler.operator.resolve("dest.test");
    assert.ok(found.found);
    assert.equal(await h.scheduler.operator.retry(found), 1);
    await waitUntil(h.recipients, (s) => s["a@dest.test"] === "delivered", { what: "a delivered" });
    assert.equal(h.transport.opened, 2);
    await h.scheduler.stop(0);
  });

  it("bounce: every recipient queued there bounces, with its event and the DSN its NOTIFY asks for", async () => {
    const h = await harness();
    await h.scheduler.start();
    const found = await h.scheduler.operator.resolve("dest.test");
    assert.ok(found.found);
    await h.scheduler.operator.suspend(found, h.clock.now() + HOUR);
    await h.store.enqueue({
      mailFrom: "a@sender.test",
      recipients: [
        { address: "a@dest.test", domain: "dest.test" },
        { address: "never@dest.test", domain: "dest.test", notify: ["NEVER"] },
      ],
      body: new TextEncoder().encode("Subject: t\r\n\r\nhello\r\n"),
      source: "smtp",
    });
    h.scheduler.wake();
    await waitUntil(() => h.row("a@dest.test"), (r) => r.dueIn === HOUR && !r.leased, { what: "held" });

    assert.equal(await h.scheduler.operator.bounce(found), 2);
    await waitUntil(h.recipients, (s) => count(s, "bounced") === 2, { what: "both bounced" });
    assert.deepEqual(await h.row("a@dest.test"), {
      state: "bounced",
      attempts: 0,
      leased: false,
      dueIn: 0,
      dsn: "failure",
    });
    assert.equal((await h.row("never@dest.test")).dsn, null, "NOTIFY=NEVER: no DSN");
    const event = await h.lastEvent("a@dest.test");
    assert.equal(event?.type, "bounced");
    assert.match(String(event?.data), /554 5\.0\.0 bounced by the relay's operator \(destination mx\.test~test\)/);
    assert.equal(h.transport.opened, 0);
    await h.scheduler.stop(0);
  });

  it("a name or domain that names no destination is found to be none, with the reason", async () => {
    const h = await harness({
      plan: async () => ({
        kind: "bounce",
        results: (addresses) =>
          addresses.map((address) => ({
            address,
            reply: reply(550, "5.1.2", "no MX"),
            disposition: "bounced",
          })),
        retry: [HOUR],
      }),
    });
    assert.deepEqual(await h.scheduler.operator.resolve("nowhere~12345678"), {
      found: false,
      reason: 'no destination is named "nowhere~12345678", and it is no domain',
    });
    assert.deepEqual(await h.scheduler.operator.resolve("nomx.test"), {
      found: false,
      reason: "mail for nomx.test has no destination now: 550 5.1.2 no MX",
    });
  });
});

describe("a destination paused after failing to reach it", () => {
  it("work routed to it meanwhile is due when the pause ends, not on the retry schedule", async () => {
    const PAUSE = 10_000;
    const h = await harness({ schedule: [PAUSE] });
    refuse(h.transport);
    await h.enqueue("a@dest.test");
    await h.scheduler.start();
    await waitUntil(() => h.row("a@dest.test"), (r) => r.state === "deferred", { what: "a deferred" });
    await h.clock.advance(PAUSE / 2);
    await h.enqueue("b@dest.test");
    h.scheduler.wake();
    await waitUntil(() => h.row("b@dest.test"), (r) => r.state === "deferred", { what: "b deferred untried" });
    assert.deepEqual(await h.row("b@dest.test"), {
      state: "deferred",
      attempts: 0,
      leased: false,
      dueIn: PAUSE / 2,
      dsn: null,
    });
    await h.scheduler.stop(0);
  });
});

describe("the shaping rules change while the relay runs", () => {
  it("a destination takes new limits at once: connections above them leave after their message, the next follow them", async () => {
    let limits = LIMITS;
    const h = await harness({ limits: () => limits });
    const first = Promise.withResolvers<void>();
    h.transport.gate = first.promise;
    for (const r of ["a", "b", "c"]) await h.enqueue(`${r}@dest.test`);
    await h.scheduler.start();
    await waitUntil(() => h.transport.sending, (n) => n === 3, { what: "three connections sending" });

    limits = { ...LIMITS, maxConnections: 1 };
    h.scheduler.reshape();
    const second = Promise.withResolvers<void>();
    h.transport.gate = second.promise;
    for (const r of ["d", "e", "f"]) await h.enqueue(`${r}@dest.test`);
    h.scheduler.wake();
    await waitUntil(h.recipients, (s) => count(s, "queued leased") === 3, { what: "d, e and f handed over" });
    first.resolve();
    await waitUntil(() => h.transport.sending, (n) => n === 1, { what: "one connection sending" });
    second.resolve();
    await waitUntil(h.recipients, (s) => count(s, "delivered") === 6, { what: "all delivered" });
    assert.equal(h.transport.connections.length, 4, "the three left; one took the rest");
    assert.equal(h.transport.connections[3]!.sent.length, 3);
    await h.scheduler.stop(0);
  });
});

describe("the delivery journal", () => {
  /** What a kill between the destination's 250 and the commit of its outcome leaves: the commit never comes. */
  const neverCommitting = (store: QueueStore): QueueStore =>
    Object.create(store, { record: { value: () => new Promise<void>(() => {}) } });

  for (const journaled of [true, false]) {
    it(`a delivery whose commit a kill cut off is ${journaled ? "recorded at restart" : "sent again"}`, async () => {
      const h = await harness();
      const journalDir = join(h.dir, "journal");
      const journal = () => (journaled ? { journal: DeliveryJournal.open(journalDir, () => {}) } : {});
      const killed = h.newScheduler({ store: neverCommitting(h.store), ...journal() });
      await killed.start();
      await h.enqueue("a@dest.test");
      killed.wake();
      await waitUntil(() => h.transport.payloads.length, (n) => n === 1, { what: "the message sent" });

      const restarted = h.newScheduler(journal());
      await restarted.start();
      restarted.wake();
      if (journaled) {
        assert.deepEqual(await h.row("a@dest.test"), {
          state: "delivered",
          attempts: 1,
          leased: false,
          dueIn: 0,
          dsn: null,
        });
        assert.equal((await h.lastEvent("a@dest.test"))?.type, "delivered");
        assert.ok(h.logged.some((e) => e.message === "recorded deliveries acknowledged before a restart"));
      } else {
        await waitUntil(() => h.transport.payloads.length, (n) => n === 2, { what: "the message sent again" });
      }
      await restarted.stop(0);
      assert.equal(h.transport.payloads.length, journaled ? 1 : 2);
    });
  }

  it("a journal it cannot read is logged and kept, and delivery starts all the same", async () => {
    const h = await harness();
    const journalDir = join(h.dir, "journal");
    mkdirSync(join(journalDir, "delivered-1.log"), { recursive: true });
    const scheduler = h.newScheduler({ journal: DeliveryJournal.open(journalDir, () => {}) });
    await scheduler.start();
    await h.enqueue("a@dest.test");
    scheduler.wake();
    await waitUntil(h.recipients, (s) => s["a@dest.test"] === "delivered", { what: "the message delivered" });
    await scheduler.stop(0);
    const failure = h.logged.find((e) => e.message === "recording the delivery journal failed");
    assert.match(String(failure?.fields?.error), /EISDIR/);
    assert.ok(existsSync(join(journalDir, "delivered-1.log")));
  });
});
