/**
 * The destination's connection pool, with a scripted transport: when it
 * opens connections (only for work no open or opening connection will
 * take), when one leaves the pool (as soon as its peer ends it), and what a
 * pooled connection found dead before any recipient was tried costs (nothing:
 * the work goes out again at once on a fresh connection; a fresh connection
 * that fails is a normal failed attempt, so nothing loops); on a fake clock,
 * how long an idle connection stays pooled and how long a destination that
 * cannot be reached stays suspended.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reply } from "../../src/core/reply.ts";
import { classifyReply } from "../../src/delivery/classify.ts";
import { Destination } from "../../src/delivery/destination.ts";
import type { DestinationMeter } from "../../src/delivery/meter.ts";
import { DestinationUnreachable, type RecipientResult, type Work } from "../../src/delivery/work.ts";
import { FakeClock, settle } from "../helpers/fake-clock.ts";
import { ScriptedTransport } from "../helpers/scripted-transport.ts";

const IDLE_MS = 30_000;
const BACKOFF_MS = 60_000;

/** A destination on a fake clock; its backoff grows with each consecutive failure. */
function pool(maxConnections = 10, meter?: DestinationMeter) {
  const clock = new FakeClock();
  const transport = new ScriptedTransport();
  const reports: { work: string; results: RecipientResult[] }[] = [];
  const destination = new Destination("mx.test", {
    transport,
    clock,
    // Idle connections stay until the test moves the clock, or stop() ends their waits.
    limits: { maxConnections, maxMessagesPerConnection: 100, idleMs: IDLE_MS },
    loadPayload: async (w) => ({
      messageId: w.messageId,
      mailFrom: w.mailFrom,
      recipients: w.claims.map((c) => c.address),
      body: new Uint8Array(),
    }),
    report: (w, results) => reports.push({ work: w.messageId, results }),
    backoff: (failures) => failures * BACKOFF_MS,
    postpone: () => assert.fail("nothing is paced here"),
    onError: (error) => assert.fail(String(error)),
    ...(meter ? { meter } : {}),
  });
  return { transport, reports, destination, clock };
}

function work(id: string): Work {
  return {
    messageId: id,
    mailFrom: "a@sender.test",
    claims: [{ address: `${id}@dest.test`, domain: "dest.test" } as Work["claims"][number]],
  };
}

const outcomes = (reports: { work: string; results: RecipientResult[] }[]) =>
  reports.map((r) => `${r.work}: ${r.results.map((x) => `${x.reply.code} ${x.disposition}`).join(", ")}`);

describe("the destination opens a connection only for work no open or opening connection will take", () => {
  it("a lone piece of work opens one connection, also while that connection is slow to open", async () => {
    const { transport, reports, destination } = pool();
    transport.held = true;
    destination.enqueue(work("m1"));
    await settle();
    transport.release();
    await settle();
    assert.deepEqual(outcomes(reports), ["m1: 250 delivered"]);
    assert.equal(transport.opened, 1);
    destination.stop();
  });

  it("work queued at once: one connection each while none is free, never more than the limit", async () => {
    for (const [pieces, limit] of [[5, 10], [5, 3]] as const) {
      const { transport, reports, destination } = pool(limit);
      const slow = Promise.withResolvers<void>();
      transport.gate = slow.promise;
      transport.held = true;
      for (let i = 1; i <= pieces; i++) destination.enqueue(work(`m${i}`));
      await settle();
      assert.equal(transport.opened, 1, "one at a time while the destination is unproven");
      transport.release();
      await settle();
      assert.equal(transport.opened, Math.min(pieces, limit), `${pieces} pieces of work, at most ${limit} connections`);
      slow.resolve();
      await settle();
      assert.equal(reports.length, pieces);
      assert.equal(transport.opened, Math.min(pieces, limit), "the connections took the rest");
      destination.stop();
    }
  });
});

describe("a pooled connection whose peer ends it", () => {
  it("leaves the pool at once; the next work opens a fresh connection", async () => {
    const { transport, reports, destination } = pool();
    destination.enqueue(work("m1"));
    await settle();
    const [first] = transport.connections;
    first!.peerEnds();
    await settle();
    assert.equal(destination.idle, true, "no connection left");
    destination.enqueue(work("m2"));
    await settle();
    assert.deepEqual(outcomes(reports), ["m1: 250 delivered", "m2: 250 delivered"]);
    assert.deepEqual(first!.sent, ["m1"]);
    assert.equal(transport.opened, 2);
    destination.stop();
  });

  it("found dead only when given work: no attempt, the work goes out at once on a fresh connection", async () => {
    const { transport, reports, destination } = pool();
    destination.enqueue(work("m1"));
    await settle();
    transport.connections[0]!.dead = true; // its peer left without the client noticing yet
    destination.enqueue(work("m2"));
    await settle();
    assert.deepEqual(outcomes(reports), ["m1: 250 delivered", "m2: 250 delivered"], "one report each, the final one");
    assert.deepEqual(transport.connections.map((c) => c.sent), [["m1", "m2"], ["m2"]]);
    destination.stop();
  });

  it("the work goes to a fresh connection, not to another pooled one", async () => {
    const { transport, reports, destination } = pool();
    const slow = Promise.withResolvers<void>();
    transport.gate = slow.promise;
    destination.enqueue(work("m1"));
    destination.enqueue(work("m2"));
    await settle();
    slow.resolve();
    await settle();
    assert.equal(transport.connections.length, 2, "two pooled connections");
    for (const c of transport.connections) c.dead = true;
    destination.enqueue(work("m3"));
    await settle();
    assert.deepEqual(outcomes(reports).slice(2), ["m3: 250 delivered"]);
    assert.deepEqual(transport.connections.map((c) => c.sent), [["m1", "m3"], ["m2"], ["m3"]]);
    destination.stop();
  });

  it("a fresh connection that fails before trying is a normal failed attempt, and nothing reconnects", async () => {
    const { transport, reports, destination } = pool();
    transport.dead = true;
    destination.enqueue(work("m1"));
    await settle();
    assert.deepEqual(outcomes(reports), ["m1: 451 deferred"]);
    assert.equal(reports[0]!.results[0]!.attempted, undefined, "counted as an attempt");
    assert.equal(transport.opened, 1);
    destination.stop();
  });

  it("a server that ends each connection before its first message: a failed attempt each, no reconnect loop", async () => {
    const { transport, reports, destination } = pool();
    transport.endedAtOnce = true;
    destination.enqueue(work("m1"));
    destination.enqueue(work("m2"));
    await settle();
    assert.deepEqual(outcomes(reports).sort(), ["m1: 451 deferred", "m2: 451 deferred"]);
    assert.equal(transport.opened, 2);
    destination.stop();
  });

  it("when the fresh connection fails too, the work is deferred once: one free retry, no loop", async () => {
    const { transport, reports, destination } = pool();
    destination.enqueue(work("m1"));
    await settle();
    transport.connections[0]!.dead = true;
    transport.dead = true;
    destination.enqueue(work("m2"));
    await settle();
    assert.deepEqual(outcomes(reports), ["m1: 250 delivered", "m2: 451 deferred"]);
    assert.equal(transport.opened, 2);
    destination.stop();
  });

  it("when no fresh connection can be opened, the work is deferred with the reason and the destination suspended", async () => {
    const { transport, reports, destination, clock } = pool();
    destination.enqueue(work("m1"));
    await settle();
    transport.connections[0]!.dead = true;
    const refused = reply(421, "4.3.2", "down for maintenance");
    transport.refuse = new DestinationUnreachable(refused, classifyReply(refused), "mx.test");
    destination.enqueue(work("m2"));
    await settle();
    assert.deepEqual(outcomes(reports), ["m1: 250 delivered", "m2: 421 deferred"]);
    assert.equal(transport.opened, 2);
    assert.equal(destination.suspendedUntil, clock.now() + BACKOFF_MS);
    destination.stop();
  });
});

describe("an idle pooled connection", () => {
  it("waits the idle time for more work, then quits and leaves the pool; later work opens a fresh one", async () => {
    const { transport, reports, destination, clock } = pool();
    destination.enqueue(work("m1"));
    await settle();
    const [first] = transport.connections;
    await clock.advance(IDLE_MS - 1);
    assert.equal(first!.usable, true, "still pooled just before the idle time is up");
    await clock.advance(1);
    assert.equal(first!.usable, false, "quit once the idle time is up");
    assert.equal(destination.idle, true, "no connection left");
    destination.enqueue(work("m2"));
    await settle();
    assert.deepEqual(outcomes(reports), ["m1: 250 delivered", "m2: 250 delivered"]);
    assert.deepEqual(transport.connections.map((c) => c.sent), [["m1"], ["m2"]]);
    destination.stop();
  });

  it("takes work that comes within the idle time, and its idle time starts again after it", async () => {
    const { transport, reports, destination, clock } = pool();
    destination.enqueue(work("m1"));
    await settle();
    await clock.advance(IDLE_MS - 1);
    destination.enqueue(work("m2"));
    await settle();
    await clock.advance(IDLE_MS - 1);
    const [only] = transport.connections;
    assert.equal(only!.usable, true, "the wait began again after m2");
    await clock.advance(1);
    assert.equal(only!.usable, false);
    assert.deepEqual(outcomes(reports), ["m1: 250 delivered", "m2: 250 delivered"]);
    assert.equal(transport.opened, 1);
    destination.stop();
  });
});

describe("a destination that cannot be reached", () => {
  it("is suspended: work meanwhile is deferred without a connection (no attempt counted); once the pause is over it is tried again", async () => {
    const { transport, reports, destination, clock } = pool();
    const refused = reply(421, "4.3.2", "down for maintenance");
    transport.refuse = new DestinationUnreachable(refused, classifyReply(refused), "mx.test");
    destination.enqueue(work("m1"));
    await settle();
    assert.equal(destination.suspendedUntil, clock.now() + BACKOFF_MS);

    await clock.advance(BACKOFF_MS - 1);
    destination.enqueue(work("m2"));
    await settle();
    assert.equal(transport.opened, 1, "no connection while suspended");
    assert.match(outcomes(reports)[1]!, /^m2: 451 deferred/);
    assert.equal(reports[1]!.results[0]!.attempted, false);
    assert.equal(reports[1]!.results[0]!.retryAt, destination.suspendedUntil, "due when the pause ends");

    await clock.advance(1);
    destination.enqueue(work("m3"));
    await settle();
    assert.equal(transport.opened, 2, "tried again once the pause is over");
    assert.deepEqual(outcomes(reports).slice(2), ["m3: 421 deferred"]);
    assert.equal(
      destination.suspendedUntil,
      clock.now() + 2 * BACKOFF_MS,
      "a longer pause after the second failure in a row",
    );

    await clock.advance(2 * BACKOFF_MS);
    transport.refuse = undefined;
    destination.enqueue(work("m4"));
    await settle();
    assert.deepEqual(outcomes(reports).slice(3), ["m4: 250 delivered"]);
    assert.equal(transport.opened, 3, "resumed");
    destination.stop();
  });
});

describe("the destination's meter (metrics)", () => {
  it("is told each connection opened, closed or not opened, and how long each attempt took", async () => {
    const told: string[] = [];
    const meter: DestinationMeter = {
      connectionOpened: () => told.push("opened"),
      connectionFailed: () => told.push("failed"),
      connectionClosed: () => told.push("closed"),
      attempted: (ms) => told.push(`attempted in ${ms} ms`),
    };
    const { transport, destination, clock } = pool(10, meter);
    const slow = Promise.withResolvers<void>();
    transport.gate = slow.promise;
    destination.enqueue(work("m1"));
    await settle();
    await clock.advance(250); // the receiver takes a quarter of a second to answer
    slow.resolve();
    await settle();
    assert.deepEqual(told, ["opened", "attempted in 250 ms"]);
    await clock.advance(IDLE_MS);
    assert.deepEqual(told.slice(2), ["closed"], "the idle connection quit");
    const refused = reply(421, "4.3.2", "down for maintenance");
    transport.refuse = new DestinationUnreachable(refused, classifyReply(refused), "mx.test");
    destination.enqueue(work("m2"));
    await settle();
    assert.deepEqual(told.slice(3), ["failed"]);
    destination.stop();
  });
});
