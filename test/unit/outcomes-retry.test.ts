/**
 * When the recorder retries a deferred recipient: on the schedule of the
 * destination its work item went to (the shaping rules' `retry`). Against a
 * real queue on a fake clock; the delay is read back from the recipient's
 * next_attempt_at (jitter: 0-10% more).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Reply, reply } from "../../src/core/reply.ts";
import { classifyReply } from "../../src/delivery/classify.ts";
import { OutcomeRecorder } from "../../src/delivery/outcomes.ts";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const M = 60_000;
const H = 3_600_000;

const dirs: string[] = [];
const opened: Database[] = [];
after(async () => {
  for (const d of opened) await d.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function harness(addresses: readonly string[] = ["x@one.test"]) {
  const dir = mkdtempSync(join(tmpdir(), "relay-outcomes-"));
  dirs.push(dir);
  const database = await openDatabase(`file:${join(dir, "relay.db")}`);
  opened.push(database);
  const clock = new FakeClock();
  await applyMigrations(database.client, migrationFiles(), clock.now());
  const store = new QueueStore(database, await BodySpool.open(join(dir, "spool")), clock, "node-a");
  const recorder = new OutcomeRecorder({
    store,
    clock,
    maxQueueTime: 5 * 24 * H,
    delayWarningAfter: 0,
    settled: () => undefined,
    log: () => undefined,
  });
  await store.enqueue({
    mailFrom: "a@sender.test",
    recipients: addresses.map((address) => ({ address, domain: address.split("@")[1]! })),
    body: new TextEncoder().encode("Subject: t\r\n\r\nx\r\n"),
    source: "smtp",
  });
  /**
   * One attempt of every recipient (all due now): each deferred with its
   * reply, in a work item of its own on its schedule. Returns the delay each
   * then waits; the clock moves on until
   * all are due again.
   */
  const attempt = async (deferrals: Record<string, { reply: Reply; schedule: readonly number[] }>) => {
    const claims = await store.claimDue(10, H);
    assert.deepEqual(claims.map((c) => c.address).sort(), Object.keys(deferrals).sort());
    const now = clock.now();
    for (const claim of claims) {
      const { reply: r, schedule } = deferrals[claim.address]!;
      const work = { messageId: claim.messageId, mailFrom: claim.mailFrom, claims: [claim] };
      await recorder.report(work, [{ address: claim.address, reply: r, ...classifyReply(r) }], schedule);
    }
    const rows = (await database.client.execute("SELECT address, next_attempt_at FROM recipients")).rows;
    const waits = Object.fromEntries(
      rows.map((row) => [String(row.address), { delay: Number(row.next_attempt_at) - now }]),
    );
    await clock.advance(Math.max(...Object.values(waits).map((w) => w.delay)));
    return waits;
  };
  return { attempt };
}

/** `delay` is `step` plus the jitter of nextRetry (up to 10%). */
function assertStep(delay: number, step: number, what: string): void {
  assert.ok(delay >= step && delay <= Math.round(step * 1.1), `${what}: waited ${delay} ms, the step is ${step} ms`);
}

const TEMPFAIL = reply(451, "4.3.0", "mailbox temporarily unavailable");

describe("the retry schedule of a deferred recipient", () => {
  it("is the one its work item came with: each destination's own, step by step", async () => {
    const h = await harness(["x@one.test", "y@two.test"]);
    const one = [7 * M, 3 * H];
    const two = [45 * M];
    const first = await h.attempt({
      "x@one.test": { reply: TEMPFAIL, schedule: one },
      "y@two.test": { reply: TEMPFAIL, schedule: two },
    });
    assertStep(first["x@one.test"]!.delay, 7 * M, "one.test, attempt 1");
    assertStep(first["y@two.test"]!.delay, 45 * M, "two.test, attempt 1");
    const second = await h.attempt({
      "x@one.test": { reply: TEMPFAIL, schedule: one },
      "y@two.test": { reply: TEMPFAIL, schedule: two },
    });
    assertStep(second["x@one.test"]!.delay, 3 * H, "one.test, attempt 2");
    assertStep(second["y@two.test"]!.delay, 45 * M, "two.test: the last step repeats");
  });
});
