/**
 * The destination's connection pool, with a scripted transport: when it
 * opens connections (only for work no open or opening connection will take).
 */
import assert from "node:assert/strict";
import { setImmediate } from "node:timers/promises";
import { describe, it } from "node:test";
import type { Clock } from "../../src/core/clock.ts";
import { reply } from "../../src/core/reply.ts";
import { classifyReply } from "../../src/delivery/classify.ts";
import { Destination } from "../../src/delivery/destination.ts";
import { type Channel, type Payload, type RecipientResult, type Transport, type Work } from "../../src/delivery/work.ts";

const OK = reply(250, "2.0.0", "ok");

/** A connection whose sends deliver. */
class Connection implements Channel {
  readonly remoteMta = "mx.test";
  usable = true;
  readonly sent: string[] = [];
  /** While set, a send waits for it (a slow receiver). */
  gate: Promise<void> | undefined;

  async send(payload: Payload): Promise<RecipientResult[]> {
    this.sent.push(payload.messageId);
    await this.gate;
    return payload.recipients.map((address) => ({ address, reply: OK, ...classifyReply(OK) }));
  }

  async quit(): Promise<void> {
    this.close();
  }

  close(): void {
    this.usable = false;
  }
}

/** Opens connections as the test scripts. */
class ScriptedTransport implements Transport {
  readonly connections: Connection[] = [];
  opened = 0;
  /** Opening waits until release() while held. */
  held = false;
  /** What the next connections are like: slow to answer. */
  gate: Promise<void> | undefined;
  private readonly waiting: (() => void)[] = [];

  async open(): Promise<Channel> {
    this.opened++;
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
    const connection = new Connection();
    connection.gate = this.gate;
    this.connections.push(connection);
    return connection;
  }

  release(): void {
    this.held = false;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

const clock: Clock = { now: () => 1_000_000 };

function pool(maxConnections = 10) {
  const transport = new ScriptedTransport();
  const reports: { work: string; results: RecipientResult[] }[] = [];
  const destination = new Destination("mx.test", {
    transport,
    clock,
    // Idle connections stay for the whole test; stop() ends the waits.
    limits: { maxConnections, maxMessagesPerConnection: 100, idleMs: 3_600_000 },
    loadPayload: async (w) => ({ messageId: w.messageId, mailFrom: w.mailFrom, recipients: w.claims.map((c) => c.address), body: new Uint8Array() }),
    report: (w, results) => reports.push({ work: w.messageId, results }),
    backoff: () => 60_000,
    onError: (error) => assert.fail(String(error)),
  });
  return { transport, reports, destination };
}

function work(id: string): Work {
  return { messageId: id, mailFrom: "a@sender.test", claims: [{ address: `${id}@dest.test`, domain: "dest.test" } as Work["claims"][number]] };
}

/** Let every pending promise and I/O callback run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await setImmediate();
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
