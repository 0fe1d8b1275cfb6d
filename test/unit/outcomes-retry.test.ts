/**
 * When the recorder retries a deferred recipient: on the schedule of the
 * destination its work item went to (the shaping rules' `retry`), except
 * after its first greylisting reply, which is retried after RELAY_GREYLIST_RETRY
 * or the wait the reply names. Against a real queue on a fake clock; the
 * delay is read back from the recipient's next_attempt_at (jitter: 0-10% more).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Reply, reply } from "../../src/core/reply.ts";
import { classifyReply } from "../../src/delivery/classify.ts";
import { greylistRetryDelay } from "../../src/delivery/greylist.ts";
import { OutcomeRecorder } from "../../src/delivery/outcomes.ts";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const S = 1000;
const M = 60_000;
const H = 3_600_000;
const GREYLIST_RETRY = 2 * M;

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
    greylistRetry: GREYLIST_RETRY,
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
   * then waits and whether it is marked greylisted; the clock moves on until
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
    const rows = (await database.client.execute("SELECT address, next_attempt_at, greylisted_at FROM recipients"))
      .rows;
    const waits = Object.fromEntries(
      rows.map((row) => [String(row.address), {
        delay: Number(row.next_attempt_at) - now,
        greylistedAt: row.greylisted_at,
      }]),
    );
    await clock.advance(Math.max(...Object.values(waits).map((w) => w.delay)));
    return waits;
  };
  /** One attempt of the only recipient. */
  const defer = async (r: Reply, schedule: readonly number[]) =>
    Object.values(await attempt({ [addresses[0]!]: { reply: r, schedule } }))[0]!;
  return { attempt, defer };
}

/** `delay` is `step` plus the jitter of nextRetry (up to 10%). */
function assertStep(delay: number, step: number, what: string): void {
  assert.ok(delay >= step && delay <= Math.round(step * 1.1), `${what}: waited ${delay} ms, the step is ${step} ms`);
}

const TEMPFAIL = reply(451, "4.3.0", "mailbox temporarily unavailable");
const GREYLISTED = reply(450, "4.7.1", "greylisted, try again later");

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

  it("a first greylisting is retried after RELAY_GREYLIST_RETRY, a second one on the schedule", async () => {
    const h = await harness();
    const first = await h.defer(GREYLISTED, [3 * H]);
    assertStep(first.delay, GREYLIST_RETRY, "first greylisting");
    assert.notEqual(first.greylistedAt, null, "the recipient remembers it was greylisted");
    const second = await h.defer(GREYLISTED, [3 * H]);
    assertStep(second.delay, 3 * H, "second greylisting");
    assert.equal(second.greylistedAt, first.greylistedAt, "the first time is kept");
  });

  it("a first greylisting after other deferrals is still retried early, whatever step the schedule is at", async () => {
    const h = await harness();
    assertStep((await h.defer(TEMPFAIL, [1 * H, 3 * H])).delay, 1 * H, "tempfail");
    assert.equal((await h.defer(TEMPFAIL, [1 * H, 3 * H])).greylistedAt, null);
    assertStep((await h.defer(GREYLISTED, [1 * H, 3 * H])).delay, GREYLIST_RETRY, "greylisting");
    assertStep((await h.defer(TEMPFAIL, [1 * H, 3 * H])).delay, 3 * H, "tempfail after it");
  });

  it("the wait a greylisting reply names is the one taken", async () => {
    const h = await harness();
    const delay = (await h.defer(reply(451, "4.7.1", "Greylisted for 3 minutes (see help)"), [3 * H])).delay;
    assertStep(delay, 3 * M, "named wait");
  });
});

describe("the wait a greylisting reply names", () => {
  const wait = (text: string) => greylistRetryDelay(reply(450, "4.7.1", text), GREYLIST_RETRY);

  it("in seconds, minutes or hours, or as a clock (milter-greylist)", () => {
    assert.equal(wait("Greylisted for 300 seconds"), 300 * S);
    assert.equal(wait("Greylisted for 5 minutes (see http://greylist.example/help)"), 5 * M);
    assert.equal(wait("please try again in 90s"), 90 * S);
    assert.equal(wait("Greylisting in action, please come back in 00:30:00"), 30 * M);
    assert.equal(wait("try again after 1 hour"), H);
  });

  it("none, none that reads as a wait, or one beyond any greylisting delay: RELAY_GREYLIST_RETRY", () => {
    assert.equal(wait("greylisted, try again later"), GREYLIST_RETRY);
    assert.equal(wait("Greylisted, see http://postgrey.example/help/dest.test.html"), GREYLIST_RETRY);
    assert.equal(wait("greylisted in 2 places"), GREYLIST_RETRY);
    assert.equal(wait("try again in 0 seconds"), GREYLIST_RETRY);
    assert.equal(wait("try again in 500ms"), GREYLIST_RETRY);
    assert.equal(wait("try again in 6 hours"), GREYLIST_RETRY);
  });
});
