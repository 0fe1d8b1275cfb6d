/**
 * Pacing at a destination, on a fake clock: messages go at the rate's
 * spacing, connections open at theirs, work that cannot go soon is handed
 * back with its turn (not held in memory), work back at its turn goes at
 * once, a hold postpones everything to its end, and transactional mail
 * passes a bulk backlog.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Lane } from "../../src/core/lane.ts";
import { Destination, PACING_HORIZON_MS } from "../../src/delivery/destination.ts";
import { TRANSACTIONAL_WEIGHT } from "../../src/delivery/lane-queue.ts";
import { Pacer, spacingOf } from "../../src/delivery/pacing.ts";
import type { Work } from "../../src/delivery/work.ts";
import { FakeClock, settle } from "../helpers/fake-clock.ts";
import { ScriptedTransport } from "../helpers/scripted-transport.ts";

const IDLE_MS = 2_000;

function paced(messageSpacing: number, connectionSpacing = 0, maxConnections = 5) {
  const clock = new FakeClock();
  const transport = new ScriptedTransport();
  const sentAt: { id: string; at: number }[] = [];
  const postponed: { id: string; at: number }[] = [];
  const destination = new Destination("mx.test", {
    transport,
    clock,
    limits: { maxConnections, maxMessagesPerConnection: 1000, idleMs: IDLE_MS },
    messages: new Pacer(messageSpacing),
    connections: new Pacer(connectionSpacing),
    postpone: (w, at) => postponed.push({ id: w.messageId, at }),
    loadPayload: async (w) => {
      sentAt.push({ id: w.messageId, at: clock.now() });
      return {
        messageId: w.messageId,
        mailFrom: w.mailFrom,
        recipients: w.claims.map((c) => c.address),
        body: new Uint8Array(),
      };
    },
    report: () => undefined,
    backoff: () => 60_000,
    onError: (error) => assert.fail(String(error)),
  });
  return { clock, transport, destination, sentAt, postponed };
}

function work(id: string, lane: Lane = "transactional", turnAt?: number): Work {
  const claim = { address: `${id}@dest.test`, domain: "dest.test", lane, ...(turnAt === undefined ? {} : { turnAt }) };
  return { messageId: id, mailFrom: "a@sender.test", claims: [claim as Work["claims"][number]] };
}

/** Move the clock in steps, letting what each step starts settle. */
async function run(clock: FakeClock, ms: number, step = 100) {
  for (let passed = 0; passed < ms; passed += step) {
    await clock.advance(step);
    await settle();
  }
}

describe("a message rate", () => {
  it("spaces messages evenly: 10/min sends one every 6 s, the first at once", async () => {
    const { clock, destination, sentAt, transport, postponed } = paced(spacingOf({ count: 10, per: "min" }));
    const start = clock.now();
    for (let i = 0; i < 5; i++) destination.enqueue(work(`m${i}`));
    await settle();
    await run(clock, 30_000);
    assert.deepEqual(sentAt.map((s) => s.at - start), [0, 6000]);
    assert.deepEqual(postponed.map((p) => p.at - start), [12000, 18000, 24000], "the rest at their turns");
    // The gap is longer than a connection idles: each message on a connection of its own, one at a time.
    assert.equal(transport.opened, 2);
    assert.equal(transport.peakSending, 1);
    destination.stop();
  });

  it("keeps a connection between messages that come closer than its idle time", async () => {
    const { clock, destination, sentAt, transport } = paced(1000);
    for (let i = 0; i < 4; i++) destination.enqueue(work(`m${i}`));
    await settle();
    await run(clock, 5_000);
    assert.equal(sentAt.length, 4);
    assert.equal(transport.opened, 1, "one connection waits for each turn");
    destination.stop();
  });

  it("never lets a receiver count more than the rate in any window", async () => {
    const spacing = spacingOf({ count: 5, per: "s" });
    const { clock, destination, sentAt } = paced(spacing);
    for (let i = 0; i < 30; i++) destination.enqueue(work(`m${i}`));
    await settle();
    await run(clock, 10_000, 50);
    assert.ok(sentAt.length >= 20, `${sentAt.length} sent`);
    for (const first of sentAt) {
      const inWindow = sentAt.filter((s) => s.at >= first.at && s.at < first.at + 1000).length;
      assert.ok(inWindow <= 5, `${inWindow} messages within one second`);
    }
    destination.stop();
  });
});

describe("a connection rate", () => {
  it("opens connections no faster than it allows", async () => {
    const { clock, destination, transport } = paced(0, 1000);
    const slow = Promise.withResolvers<void>();
    transport.gate = slow.promise;
    for (let i = 0; i < 5; i++) destination.enqueue(work(`m${i}`));
    await settle();
    const opened: number[] = [];
    for (let t = 0; t <= 4000; t += 500) {
      opened.push(transport.opened);
      await run(clock, 500);
    }
    slow.resolve();
    assert.deepEqual(opened, [1, 1, 2, 2, 3, 3, 4, 4, 5]);
    destination.stop();
  });
});

describe("work that cannot go soon", () => {
  it("is handed back with its turn, in order, and none of it is kept in memory", async () => {
    const spacing = spacingOf({ count: 100, per: "h" });
    const { clock, destination, postponed, sentAt } = paced(spacing);
    const start = clock.now();
    for (let i = 0; i < 50; i++) destination.enqueue(work(`m${i}`));
    await settle();
    const kept = Math.floor(PACING_HORIZON_MS / spacing) + 1;
    assert.equal(destination.size + sentAt.length, kept);
    assert.equal(postponed.length, 50 - kept);
    postponed.forEach((p, i) => assert.equal(p.at - start, (kept + i) * spacing, `the turn of ${p.id}`));
    // More work later is given turns after the last one handed out, not the same ones again.
    destination.enqueue(work("late"));
    assert.equal(postponed.at(-1)!.id, "late");
    assert.equal(postponed.at(-1)!.at - start, 50 * spacing);
    destination.stop();
  });

  it("goes at once when it is back at its turn", async () => {
    const spacing = spacingOf({ count: 100, per: "h" });
    const { clock, destination, postponed, sentAt } = paced(spacing);
    for (let i = 0; i < 10; i++) destination.enqueue(work(`m${i}`));
    await settle();
    const first = postponed[0]!;
    await run(clock, first.at - clock.now(), 1000);
    const before = postponed.length;
    destination.enqueue(work(first.id, "transactional", first.at));
    await settle();
    assert.equal(postponed.length, before, "not handed back again");
    assert.equal(sentAt.at(-1)!.id, first.id);
    destination.stop();
  });
});

describe("a hold", () => {
  it("postpones what is queued and what comes to its end; after it, work goes again", async () => {
    const { clock, destination, postponed, sentAt } = paced(0);
    const until = clock.now() + 60_000;
    destination.hold(until);
    destination.enqueue(work("m1"));
    assert.deepEqual(postponed, [{ id: "m1", at: until }]);
    await run(clock, 60_000, 5_000);
    destination.enqueue(work("m2"));
    await settle();
    assert.deepEqual(sentAt.map((s) => s.id), ["m2"]);
    destination.stop();
  });
});

describe("lanes", () => {
  it("a transactional message passes a bulk backlog: it goes within a few deliveries", async () => {
    const { clock, destination, sentAt } = paced(1000, 0, 1);
    for (let i = 0; i < 9; i++) destination.enqueue(work(`bulk${i}`, "bulk"));
    await settle();
    await run(clock, 2000);
    destination.enqueue(work("reset", "transactional"));
    await run(clock, 3000);
    const order = sentAt.map((s) => s.id);
    assert.ok(order.indexOf("reset") <= 3, order.join(" "));
    destination.stop();
  });

  it("bulk still gets its share while transactional mail keeps coming", async () => {
    const { clock, destination, sentAt } = paced(100, 0, 1);
    for (let i = 0; i < 5; i++) destination.enqueue(work(`bulk${i}`, "bulk"));
    for (let i = 0; i < 40; i++) destination.enqueue(work(`tx${i}`, "transactional"));
    await settle();
    await run(clock, 4000);
    const firstBulk = sentAt.findIndex((s) => s.id.startsWith("bulk"));
    assert.ok(firstBulk >= 0 && firstBulk <= TRANSACTIONAL_WEIGHT + 1, `first bulk at ${firstBulk}`);
    destination.stop();
  });
});
