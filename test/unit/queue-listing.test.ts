import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { InStatement } from "@libsql/client";
import type { Database } from "../../src/queue/database.ts";
import { decodeCursor, encodeCursor, type QueueCursor } from "../../src/queue/queue-cursor.ts";
import { listQueue, type QueuedRecipient, type QueueQuery } from "../../src/queue/queue-listing.ts";
import type { NewMessage } from "../../src/queue/records.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-listing-");

const T0 = 1_700_000_000_000;
const body = new TextEncoder().encode("Subject: t\r\n\r\nhello\r\n");
const msg = (to: string[], over: Partial<NewMessage> = {}): NewMessage => ({
  mailFrom: "sender@src.example",
  recipients: to.map((address) => ({ address, domain: address.split("@")[1]! })),
  body,
  source: "http",
  ...over,
});

/**
 * A queue of 3 domains x 3 states, several recipients per message at one
 * domain (equal domain, state and message id: only the recipient id tells
 * them apart), two senders, tags on some, and finished recipients between.
 */
async function filled() {
  const { database } = await temporaryDatabase(T0);
  const clock = new FakeClock(T0);
  const store = new QueueStore(database, undefined, clock, "node-a");
  for (let i = 0; i < 30; i++) {
    const d = ["a.example", "b.example", "c.example"][i % 3]!;
    const id = await store.enqueue(msg([`x${i}@${d}`, `y${i}@${d}`, `z${i}@other.example`], {
      mailFrom: i % 2 === 0 ? "even@src.example" : "Odd@Src.example",
      ...(i % 4 === 0 ? { tags: ["news", `n${i}`] } : {}),
    }));
    if (i % 5 === 0) await store.control.hold({ messageId: id, address: `y${i}@${d}` });
    if (i % 7 === 0) await store.control.cancel({ messageId: id, address: `z${i}@other.example` });
    await clock.advance(60_000);
  }
  // Some deferred: one attempt each, due later.
  const claims = (await store.claimDue(1000, 60_000)).filter((c) =>
    c.address.startsWith("x") && Number(c.address.slice(1, 3).replace("@", "")) % 3 === 1
  );
  await store.record(claims.map((c) => ({
    recipientId: c.recipientId,
    messageId: c.messageId,
    address: c.address,
    reply: "451 4.3.0 later",
    state: "deferred" as const,
    nextAttemptAt: clock.now() + 3_600_000,
    event: {},
  })));
  await store.releaseLeases();
  const all = (await listQueue(database.client, { limit: 1000 }, clock.now())).recipients;
  return { database, store, clock, all };
}

/** Every page of a query, following cursors (through their text form, as a client would). */
async function pages(database: Database, query: Omit<QueueQuery, "after">, now: number, scan?: number) {
  const seen: QueuedRecipient[] = [];
  let after: QueueCursor | undefined;
  let count = 0;
  for (;;) {
    const page = await listQueue(database.client, { ...query, ...(after ? { after } : {}) }, now, scan);
    assert.ok(page.recipients.length <= query.limit);
    seen.push(...page.recipients);
    count++;
    if (!page.next) return { seen, count };
    after = decodeCursor(encodeCursor(page.next));
    assert.ok(after);
  }
}

const key = (r: QueuedRecipient) => [r.domain, r.state, r.messageId, String(r.recipientId).padStart(8, "0")].join("|");

describe("the queue listing (keyset paging)", () => {
  it("lists every recipient in the queue once, in key order, and none that is final", async () => {
    const { database, all, clock } = await filled();
    const n = (await database.client.execute(
      "SELECT count(*) AS n FROM recipients WHERE state IN ('queued', 'deferred', 'held')",
    )).rows[0]!.n;
    assert.equal(all.length, Number(n));
    assert.deepEqual(new Set(all.map((r) => r.state)), new Set(["queued", "deferred", "held"]));
    assert.deepEqual(all.map(key), all.map(key).toSorted(), "key order");
    for (const limit of [1, 2, 7, 100]) {
      const { seen } = await pages(database, { limit }, clock.now());
      assert.deepEqual(seen.map((r) => r.recipientId), all.map((r) => r.recipientId), `pages of ${limit}`);
    }
  });

  it("filters, seeks or bounded scans alike, return each matching row exactly once across pages", async () => {
    const { database, all, clock } = await filled();
    const cases: [Omit<QueueQuery, "limit" | "after">, (r: QueuedRecipient) => boolean][] = [
      [{ domain: "b.example" }, (r) => r.domain === "b.example"],
      [{ domain: "B.example", state: "held" }, (r) => r.domain === "b.example" && r.state === "held"],
      [{ state: "deferred" }, (r) => r.state === "deferred"],
      [{ state: "held" }, (r) => r.state === "held"],
      [{ sender: "odd@src.example" }, (r) => r.mailFrom === "Odd@Src.example"],
      [{ tag: "news" }, (r) => r.tags.includes("news")],
      [{ recipient: "Y10@b.example" }, (r) => r.address === "y10@b.example"],
      [
        { receivedBefore: T0 + 10 * 60_000 },
        (r) => r.messageId < all.find((x) => x.address === "x10@b.example")!.messageId,
      ],
      [
        { domain: "a.example", tag: "news", state: "queued" },
        (r) => r.domain === "a.example" && r.tags.includes("news") && r.state === "queued",
      ],
    ];
    for (const [filter, matches] of cases) {
      const expected = all.filter(matches).map((r) => r.recipientId);
      assert.ok(expected.length > 0, JSON.stringify(filter));
      for (const [limit, scan] of [[1000, 5000], [3, 5000], [2, 4], [1, 1]]) {
        const { seen } = await pages(database, { ...filter, limit: limit! }, clock.now(), scan);
        assert.deepEqual(
          seen.map((r) => r.recipientId),
          expected,
          `${JSON.stringify(filter)} limit ${limit} scan ${scan}`,
        );
      }
    }
  });

  it("a page is a seek in recipients_in_queue, never a scan of the table, and sorts no more than it reads", async () => {
    const { database, clock } = await filled();
    const statements: InStatement[] = [];
    const recording = new Proxy(database.client, {
      get(target, prop, receiver) {
        if (prop === "execute") {
          return (stmt: InStatement) => {
            statements.push(stmt);
            return target.execute(stmt);
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const after: QueueCursor = { domain: "b.example", state: "held", messageId: "0", recipientId: 0 };
    for (
      const query of [{}, { domain: "b.example" }, { domain: "b.example", state: "queued" as const }, { sender: "x@y" }]
    ) {
      await listQueue(recording, { ...query, limit: 10, after }, clock.now(), 1);
    }
    assert.ok(statements.length >= 4);
    for (const s of statements) {
      const { sql, args } = s as { sql: string; args: never[] };
      const plan = (await database.client.execute({ sql: `EXPLAIN QUERY PLAN ${sql}`, args })).rows.map((r) =>
        String(r.detail)
      ).join("\n");
      assert.match(plan, /SEARCH recipients USING COVERING INDEX recipients_in_queue \(/, `${sql}\n${plan}`);
      assert.doesNotMatch(plan, /SCAN (recipients|messages|r|m)\b/, `${sql}\n${plan}`);
      if (/JOIN messages/.test(sql)) {
        assert.match(plan, /SEARCH m USING INDEX sqlite_autoindex_messages_1 \(id=\?\)/, plan);
      }
    }
  });
});

describe("the queue cursor", () => {
  it("round-trips through its URL-safe text and refuses anything else", () => {
    const cursor: QueueCursor = {
      domain: "ex.example",
      state: "deferred",
      messageId: "01ARZ3NDEKTSV4RRFFQ69G5FAV",
      recipientId: 42,
    };
    const text = encodeCursor(cursor);
    assert.match(text, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeCursor(text), cursor);
    const unicode: QueueCursor = { ...cursor, domain: "xn--bcher-kva.example\u00e9" };
    assert.deepEqual(decodeCursor(encodeCursor(unicode)), unicode);
    for (
      const bad of [
        "",
        "!!",
        "e30",
        btoa("[1,2,3,4]"),
        btoa('["d","final","m",1]'),
        btoa('["d","queued","m",-1]'),
        btoa('["d","queued","m",1.5]'),
      ]
    ) {
      assert.equal(decodeCursor(bad.replace(/=+$/, "")), undefined, bad);
    }
  });
});
