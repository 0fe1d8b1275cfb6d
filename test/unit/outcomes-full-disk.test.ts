/**
 * Outcomes a full disk refused (SQLITE_FULL) are committed again every
 * FULL_RETRY_MS for as long as the recorder was told (half the lease), and
 * the claims are settled once, after: a delivered recipient is recorded as
 * delivered late rather than sent again when its lease runs out. Against a
 * real queue on a fake clock, whose database answers as a full disk does
 * while `full` is set (the disk is the edge here).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { reply } from "../../src/core/reply.ts";
import { classifyReply } from "../../src/delivery/classify.ts";
import { FULL_RETRY_MS, OutcomeRecorder } from "../../src/delivery/outcomes.ts";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { waitUntil } from "../helpers/wait-until.ts";

const H = 3_600_000;
const dirs: string[] = [];
const opened: Database[] = [];
after(async () => {
  for (const d of opened) await d.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** What libSQL throws when the disk is full (the database worker passes the code on). */
const diskFull = () => Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });

async function harness(failure: () => Error, retryFullForMs = 10 * FULL_RETRY_MS) {
  const dir = mkdtempSync(join(tmpdir(), "relay-outcomes-full-"));
  dirs.push(dir);
  const real = await openDatabase(`file:${join(dir, "relay.db")}`);
  opened.push(real);
  const clock = new FakeClock();
  await applyMigrations(real.client, migrationFiles(), clock.now());
  const disk = { full: false, refused: 0 };
  const client = new Proxy(real.client, {
    get(target, key) {
      if (key !== "batch") return Reflect.get(target, key).bind(target);
      return (...args: Parameters<typeof target.batch>) => {
        if (!disk.full) return target.batch(...args);
        disk.refused++;
        return Promise.reject(failure());
      };
    },
  });
  // Outcomes go to the worker as urgent batches: those meet the full disk too.
  const database: Database = {
    ...real,
    client,
    urgentBatch: async (stmts) => void (await client.batch(stmts, "write")),
  };
  const store = new QueueStore(database, await BodySpool.open(join(dir, "spool")), clock, "node-a");
  const settled: number[] = [];
  const logged: string[] = [];
  const recorder = new OutcomeRecorder({
    store,
    clock,
    retryFullForMs,
    maxQueueTime: 5 * 24 * H,
    greylistRetry: 60_000,
    delayWarningAfter: 0,
    settled: (claims) => settled.push(claims.length),
    log: (level, message) => logged.push(`${level}: ${message}`),
  });
  await store.enqueue({
    mailFrom: "a@sender.test",
    recipients: [{ address: "x@one.test", domain: "one.test" }],
    body: new TextEncoder().encode("Subject: t\r\n\r\nx\r\n"),
    source: "smtp",
  });
  const [claim] = await store.claimDue(10, H);
  const work = { messageId: claim!.messageId, mailFrom: claim!.mailFrom, claims: [claim!] };
  const delivered = reply(250, "2.0.0", "queued");
  const report = () =>
    recorder.report(work, [{ address: claim!.address, reply: delivered, ...classifyReply(delivered) }], [60_000]);
  const state = async () => String((await real.client.execute("SELECT state FROM recipients")).rows[0]!.state);
  /** Once the recorder waits to try again (the database answers on a thread of its own), move to that time. */
  const nextTry = async () => {
    await waitUntil(() => clock.pending, (pending) => pending.includes(FULL_RETRY_MS), { what: "a wait to try again" });
    await clock.advance(FULL_RETRY_MS);
  };
  return { disk, settled, logged, report, state, nextTry };
}

it("a delivered outcome the full disk refused is recorded once there is room, then settled", async () => {
  const { disk, settled, report, state, logged, nextTry } = await harness(diskFull);
  disk.full = true;
  const reported = report();
  for (let i = 0; i < 3; i++) await nextTry();
  assert.equal(disk.refused, 4, "tried at once, then every FULL_RETRY_MS");
  assert.deepEqual(settled, [], "not settled while it is tried again");
  disk.full = false;
  await nextTry();
  await reported;
  assert.equal(await state(), "delivered");
  assert.deepEqual(settled, [1]);
  assert.ok(logged.every((line) => line.startsWith("warn: recording delivery outcomes failed: the disk is full")));
});

it("tried again only for as long as it was told; then the lease decides", async () => {
  const { disk, settled, report, state, logged, nextTry } = await harness(diskFull, 3 * FULL_RETRY_MS);
  disk.full = true;
  const reported = report();
  for (let i = 0; i < 3; i++) await nextTry();
  await reported;
  assert.equal(disk.refused, 4, "at once, then at 1, 2 and 3 times FULL_RETRY_MS");
  assert.equal(await state(), "queued");
  assert.deepEqual(settled, [1]);
  assert.equal(logged.at(-1), "error: recording delivery outcomes failed");
});

it("another failure is not tried again", async () => {
  const { disk, settled, report, logged } = await harness(() => new Error("constraint failed"));
  disk.full = true;
  await report();
  assert.equal(disk.refused, 1);
  assert.deepEqual(settled, [1]);
  assert.deepEqual(logged, ["error: recording delivery outcomes failed"]);
});
