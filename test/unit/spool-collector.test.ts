import assert from "node:assert/strict";
import { readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { NewMessage, Outcome } from "../../src/queue/records.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { SpoolFileWriter } from "../../src/queue/spool-file.ts";
import { SpoolCollector } from "../../src/queue/spool-collector.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const T0 = 1_700_000_000_000;
const MINUTE = 60_000;
const spools: BodySpool[] = [];
after(async () => {
  for (const spool of spools) await spool.close();
});
const temporaryDatabase = temporaryDatabases("relay-spool-collector-");

/** Segments of 100 bytes: a 60-byte body fills one. */
async function fresh() {
  const { database, dir } = await temporaryDatabase(T0);
  const spool = await BodySpool.open(join(dir, "spool"), 100);
  spools.push(spool);
  const clock = { t: T0, now: () => clock.t };
  const store = new QueueStore(database, spool, clock, "node-a");
  const logged: string[] = [];
  const collector = new SpoolCollector(store.bodies, spool, clock, (_level, message) => logged.push(message));
  return { dir, database, spool, clock, store, collector, logged };
}

const body = (tag: string) =>
  new TextEncoder().encode(`Subject: ${tag}\r\n\r\n${tag.repeat(40 / tag.length)}\r\n`.padEnd(60, "."));
const message = (tag: string): NewMessage => ({
  mailFrom: "s@src.example",
  recipients: [{ address: `${tag}@d.example`, domain: "d.example" }],
  body: body(tag),
  source: "smtp",
});
const delivered = (c: { recipientId: number; messageId: string; address: string }): Outcome => ({
  recipientId: c.recipientId,
  messageId: c.messageId,
  address: c.address,
  state: "delivered",
  reply: "250 ok",
  event: {},
});

async function deliverAll(store: QueueStore, except: string[] = []): Promise<void> {
  const claims = await store.claimDue(100, 60_000);
  await store.record(claims.filter((c) => !except.includes(c.messageId)).map(delivered));
}

describe("SpoolCollector", () => {
  it("removes closed segments that no message needs any more, and keeps the rest", async () => {
    const { spool, store, collector } = await fresh();
    const [a, b, c] = [
      await store.enqueue(message("aa")),
      await store.enqueue(message("bb")),
      await store.enqueue(message("cc")),
    ];
    assert.equal(spool.segments().length, 3, "one 60-byte body per 100-byte segment");
    await deliverAll(store, [b]);
    assert.deepEqual(await collector.collect(), { removed: 1, moved: 0 }, "a's segment; c's is the active one");
    assert.equal(spool.segments().length, 2);
    assert.equal(new TextDecoder().decode((await store.loadMessage(b))!.body), new TextDecoder().decode(body("bb")));
    assert.ok(await store.loadMessage(c));
    assert.ok(await store.loadMessage(a), "the finished message's row stays");
  });

  it("removes what a crash left: a segment written but never referred to", async () => {
    const { dir, store, collector } = await fresh();
    await store.enqueue(message("aa"));
    writeFileSync(join(dir, "spool", "000000000000.bodies"), "bytes of a batch whose commit never happened");
    const reopened = await BodySpool.open(join(dir, "spool"), 100);
    spools.push(reopened);
    assert.deepEqual(reopened.segments(), [0, 1]);
    const collector2 = new SpoolCollector(store.bodies, reopened, { now: () => T0 }, () => undefined);
    assert.deepEqual(await collector2.collect(), { removed: 1, moved: 0 });
    assert.deepEqual(reopened.segments(), [1], "the referred one stays though closed to this run");
    assert.deepEqual(
      await collector.collect(),
      { removed: 0, moved: 0 },
      "the first run's active segment is not touched by it",
    );
  });

  it("leaves a segment whose write is not settled yet: its rows may not be visible to the usage query", async () => {
    const { spool, collector } = await fresh();
    const writer = new SpoolFileWriter();
    const { refs, write } = spool.place([body("zz"), body("yy")]);
    writer.write(write);
    writer.write(spool.place([body("xx")]).write); // a new active segment: the first one is closed
    writer.close();
    assert.deepEqual(await collector.collect(), { removed: 0, moved: 0 });
    spool.settle(refs);
    assert.deepEqual(await collector.collect(), { removed: 1, moved: 0 }, "settled, and nothing refers to it");
  });

  it("compacts a closed segment mostly freed once it has been quiet for ten minutes, then removes it", async () => {
    const { spool, store, clock, collector, database } = await fresh();
    // Bodies share a 100-byte segment only if appended together: one group commit.
    const [keep] = await Promise.all([
      store.enqueue(message("kk")),
      store.enqueue(message("dd")),
      store.enqueue(message("ff")),
    ]);
    await store.enqueue(message("ee")); // starts the next segment
    const [first] = spool.segments();
    await deliverAll(store, [keep]);
    assert.deepEqual(
      await collector.collect(),
      { removed: 0, moved: 0 },
      "written to a moment ago: it may still empty by itself",
    );
    clock.t += 11 * MINUTE;
    const old = (clock.t - 11 * MINUTE) / 1000;
    utimesSync(join(spool.dir, `${String(first).padStart(12, "0")}.bodies`), old, old);
    assert.deepEqual(await collector.collect(), { removed: 0, moved: 1 });
    const [row] =
      (await database.client.execute({ sql: "SELECT spool_segment FROM messages WHERE id = ?", args: [keep] })).rows;
    assert.notEqual(row!.spool_segment, first);
    assert.equal(new TextDecoder().decode((await store.loadMessage(keep))!.body), new TextDecoder().decode(body("kk")));
    // The emptied segment goes on the next run, and so does e's (delivered; closed by the move).
    assert.deepEqual(await collector.collect(), { removed: 2, moved: 0 });
    assert.ok(!spool.segments().includes(first!));
  });

  it("never compacts a segment still mostly needed", async () => {
    const { spool, store, clock, collector } = await fresh();
    await Promise.all([store.enqueue(message("kk")), store.enqueue(message("dd"))]);
    await store.enqueue(message("ee"));
    const [first] = spool.segments();
    clock.t += 60 * MINUTE;
    const old = (T0 - 60 * MINUTE) / 1000;
    utimesSync(join(spool.dir, `${String(first).padStart(12, "0")}.bodies`), old, old);
    assert.deepEqual(await collector.collect(), { removed: 0, moved: 0 });
    assert.equal(readdirSync(spool.dir).length, 2);
  });
});
