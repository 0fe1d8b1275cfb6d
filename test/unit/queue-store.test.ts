import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import type { NewMessage, Outcome } from "../../src/queue/records.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { withHeadroom } from "../../src/core/headroom.ts";
import { prependFields } from "../../src/core/header-section.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const T0 = 1_700_000_000_000;
const LEASE = 60_000;

const dirs: string[] = [];
const opened: Database[] = [];

async function fresh(nodeId = "node-a") {
  const dir = mkdtempSync(join(tmpdir(), "relay-store-"));
  dirs.push(dir);
  const database = await openDatabase(`file:${join(dir, "relay.db")}`);
  opened.push(database);
  await applyMigrations(database.client, migrationFiles(), T0);
  const clock = new FakeClock(T0);
  const spool = await BodySpool.open(join(dir, "spool"));
  return { database, clock, spool, store: new QueueStore(database, spool, clock, nodeId), dir };
}

after(async () => {
  for (const d of opened) await d.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const body = new TextEncoder().encode("Subject: t\r\n\r\nhello\r\n");
const msg = (to: string[], over: Partial<NewMessage> = {}): NewMessage => ({
  mailFrom: "sender@src.example",
  recipients: to.map((address) => ({ address, domain: address.split("@")[1]! })),
  body,
  source: "smtp",
  ...over,
});

async function rows(database: Database, sql: string, args: (string | number)[] = []) {
  return (await database.client.execute({ sql, args })).rows;
}

describe("QueueStore.enqueue", () => {
  it("writes the message, its recipients, and one received event per recipient", async () => {
    const { store, database, clock } = await fresh();
    const id = await store.enqueue(
      msg(["a@one.example", "b@two.example"], {
        dsnRet: "HDRS",
        dsnEnvid: "env-1",
        tags: ["t1"],
        metadata: { k: "v" },
        clientIp: "127.0.0.1",
      }),
    );
    assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);

    const [m] = await rows(database, "SELECT * FROM messages WHERE id = ?", [id]);
    assert.ok(m);
    assert.equal(m.created_at, clock.now());
    assert.equal(m.mail_from, "sender@src.example");
    assert.equal(m.size, body.byteLength);
    assert.equal(m.dsn_ret, "HDRS");
    assert.equal(m.dsn_envid, "env-1");
    assert.equal(m.client_ip, "127.0.0.1");
    assert.equal((m.body as ArrayBuffer).byteLength, 0, "the bytes are in the spool, not the row");
    assert.equal(typeof m.spool_segment, "number");
    assert.deepEqual((await store.loadMessage(id))!.body, body);

    const r = await rows(database, "SELECT * FROM recipients WHERE message_id = ? ORDER BY id", [id]);
    assert.deepEqual(r.map((x) => [x.address, x.domain, x.state, x.attempts, x.next_attempt_at, x.lease_owner]), [
      ["a@one.example", "one.example", "queued", 0, T0, null],
      ["b@two.example", "two.example", "queued", 0, T0, null],
    ]);

    const ev = await rows(database, "SELECT type, message_id, recipient, at FROM events ORDER BY id");
    assert.deepEqual(ev.map((e) => [e.type, e.message_id, e.recipient, e.at]), [
      ["received", id, "a@one.example", T0],
      ["received", id, "b@two.example", T0],
    ]);
  });

  it("reads a body again where its row now says when the collector moved it after the row was read", async () => {
    const { store, database, clock, spool } = await fresh();
    const id = await store.enqueue(msg(["a@d.example"]));
    let first = true;
    // The first read of the row sees where the body was before a move whose old segment is gone.
    const stale: Database = {
      ...database,
      client: new Proxy(database.client, {
        get(target, prop, receiver) {
          if (prop === "execute") {
            return async (stmt: { sql: string }) => {
              const result = await target.execute(stmt as never);
              if (first && stmt.sql.includes("spool_segment")) {
                first = false;
                return { ...result, rows: result.rows.map((row) => ({ ...row, spool_segment: 999_999 })) };
              }
              return result;
            };
          }
          const value = Reflect.get(target, prop, receiver);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }),
    };
    assert.deepEqual((await new QueueStore(stale, spool, clock, "node-a").loadMessage(id))!.body, body);
    assert.equal(first, false, "the stale row was read");
  });

  it("keeps bodies in their rows when it has no spool (a remote database shared by nodes)", async () => {
    const { database, clock } = await fresh();
    const store = new QueueStore(database, undefined, clock, "node-a");
    const id = await store.enqueue(msg(["a@d.example"]));
    const [m] = await rows(database, "SELECT body, spool_segment FROM messages WHERE id = ?", [id]);
    assert.deepEqual(new Uint8Array(m!.body as ArrayBuffer), body);
    assert.equal(m!.spool_segment, null);
    assert.deepEqual((await store.loadMessage(id))!.body, body);
    const [c] = await store.claimDue(10, LEASE);
    await store.record([outcome(c!, "delivered")]);
    const [done] = await rows(database, "SELECT length(body) AS n FROM messages WHERE id = ?", [id]);
    assert.equal(done!.n, 0, "dropped once finished");
  });

  it("stores a body written in front of its headroom exactly (the buffer moves to the database worker whole)", async () => {
    const { store } = await fresh();
    const tail = new TextEncoder().encode(`Subject: big\r\n\r\n${"x".repeat(8000)}\r\n`);
    const room = withHeadroom(tail.length);
    room.set(tail);
    const message = prependFields(room, ["Received: from test"]);
    const id = await store.enqueue(msg(["a@d.example"], { body: message }));
    assert.equal(message.byteLength, 0, "moved, not copied");
    const stored = new TextDecoder().decode((await store.loadMessage(id))!.body);
    assert.equal(stored, `Received: from test\r\n${new TextDecoder().decode(tail)}`);
  });

  it("keeps DSN NOTIFY and ORCPT per recipient", async () => {
    const { store, database } = await fresh();
    const id = await store.enqueue({
      ...msg([]),
      recipients: [{
        address: "x@d.example",
        domain: "d.example",
        notify: ["SUCCESS", "FAILURE"],
        orcpt: "rfc822;X@d.example",
      }],
    });
    const [r] = await rows(database, "SELECT dsn_notify, dsn_orcpt FROM recipients WHERE message_id = ?", [id]);
    assert.equal(r!.dsn_notify, "SUCCESS,FAILURE");
    assert.equal(r!.dsn_orcpt, "rfc822;X@d.example");
  });

  it("concurrent enqueues all land, each with its own id", async () => {
    const { store, database } = await fresh();
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => store.enqueue(msg([`u${i}@d.example`]))));
    assert.equal(new Set(ids).size, 20);
    const [count] = await rows(database, "SELECT COUNT(*) AS n FROM recipients");
    assert.equal(count!.n, 20);
    const [evs] = await rows(database, "SELECT COUNT(*) AS n FROM events WHERE type = 'received'");
    assert.equal(evs!.n, 20);
  });
});

describe("QueueStore.claimDue", () => {
  it("returns due recipients with their envelope and leases them", async () => {
    const { store, database } = await fresh();
    const id = await store.enqueue(msg(["a@one.example", "b@one.example"]));
    const claims = await store.claimDue(10, LEASE);
    assert.deepEqual(
      claims.map((c) => [c.messageId, c.address, c.domain, c.attempts, c.mailFrom, c.messageCreatedAt]).sort(),
      [
        [id, "a@one.example", "one.example", 0, "sender@src.example", T0],
        [id, "b@one.example", "one.example", 0, "sender@src.example", T0],
      ],
    );
    const r = await rows(database, "SELECT lease_owner, next_attempt_at, state FROM recipients");
    for (const x of r) {
      assert.equal(x.lease_owner, "node-a");
      assert.equal(x.next_attempt_at, T0 + LEASE);
      assert.equal(x.state, "queued", "a lease is not a state change");
    }
  });

  it("a leased recipient is not claimed again until its lease runs out", async () => {
    const { store, clock } = await fresh();
    await store.enqueue(msg(["a@one.example"]));
    assert.equal((await store.claimDue(10, LEASE)).length, 1);
    assert.equal((await store.claimDue(10, LEASE)).length, 0);
    await clock.advance(LEASE - 1);
    assert.equal((await store.claimDue(10, LEASE)).length, 0, "one millisecond before the lease ends");
    await clock.advance(1);
    const again = await store.claimDue(10, LEASE);
    assert.equal(again.length, 1, "due again when the lease runs out (after a crash, nothing is stuck)");
    assert.equal(again[0]!.address, "a@one.example");
  });

  it("respects the limit, oldest due first", async () => {
    const { store, clock } = await fresh();
    await store.enqueue(msg(["first@d.example"]));
    await clock.advance(10);
    await store.enqueue(msg(["second@d.example"]));
    await clock.advance(10);
    await store.enqueue(msg(["third@d.example"]));
    const one = await store.claimDue(1, LEASE);
    assert.deepEqual(one.map((c) => c.address), ["first@d.example"]);
    const rest = await store.claimDue(10, LEASE);
    assert.deepEqual(rest.map((c) => c.address).sort(), ["second@d.example", "third@d.example"]);
  });

  it("a message with sendAt is not claimed before that time", async () => {
    const { store, clock } = await fresh();
    await store.enqueue(msg(["later@d.example"], { sendAt: T0 + 3_600_000 }));
    await store.enqueue(msg(["past@d.example"], { sendAt: T0 - 3_600_000 }));
    const [past] = await store.claimDue(10, LEASE);
    assert.equal(past?.address, "past@d.example", "a past sendAt is due now");
    await store.record([outcome(past!, "delivered")]);
    assert.equal(await store.nextDueAt(), T0 + 3_600_000);
    await clock.advance(3_600_000 - 1);
    assert.deepEqual(await store.claimDue(10, LEASE), []);
    await clock.advance(1);
    assert.deepEqual((await store.claimDue(10, LEASE)).map((c) => c.address), ["later@d.example"]);
  });

  it("never claims finished or cancelled recipients", async () => {
    const { store, clock } = await fresh();
    const id = await store.enqueue(msg(["done@d.example", "gone@d.example"]));
    const [done] = (await store.claimDue(10, LEASE)).filter((c) => c.address === "done@d.example");
    await store.record([outcome(done!, "delivered")]);
    await clock.advance(LEASE);
    await store.control.cancel({ messageId: id });
    await clock.advance(10 * LEASE);
    assert.deepEqual(await store.claimDue(10, LEASE), []);
    assert.equal(await store.nextDueAt(), undefined);
  });

  it("returns nothing from an empty queue", async () => {
    const { store } = await fresh();
    assert.deepEqual(await store.claimDue(10, LEASE), []);
    assert.equal(await store.nextDueAt(), undefined);
  });

  it("releasing a node's leases searches the partial index recipients_leased, not the queue", async () => {
    const { database } = await fresh();
    const plan = await rows(
      database,
      `EXPLAIN QUERY PLAN UPDATE recipients SET lease_owner = NULL, next_attempt_at = MIN(next_attempt_at, ?)
            WHERE lease_owner = ? AND state IN ('queued', 'deferred')`,
      [T0, "node-a"],
    );
    const detail = plan.map((r) => String(r.detail)).join("\n");
    assert.match(detail, /SEARCH recipients USING INDEX recipients_leased/, detail);
  });
});

/**
 * A store whose database records every statement it runs on recipients, to
 * read the plans of exactly the queries the store makes.
 */
async function recordingStore() {
  const made = await fresh();
  const statements: { sql: string; args: unknown[] }[] = [];
  const recording: Database = {
    ...made.database,
    client: new Proxy(made.database.client, {
      get(target, prop, receiver) {
        if (prop === "execute") {
          return (stmt: string | { sql: string; args?: unknown[] }) => {
            const { sql, args = [] } = typeof stmt === "string" ? { sql: stmt } : stmt;
            if (/\brecipients\b/.test(sql)) statements.push({ sql, args: [...args] });
            return target.execute(stmt as never);
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }),
  };
  const store = new QueueStore(recording, made.spool, made.clock, "node-a");
  /** The query plan of each statement recorded since the last call, one string each. */
  const plans = async () => {
    const taken = statements.splice(0);
    return Promise.all(taken.map(async ({ sql, args }) => {
      const plan = await rows(made.database, `EXPLAIN QUERY PLAN ${sql}`, args as (string | number)[]);
      return `${sql}\n${plan.map((r) => String(r.detail)).join("\n")}`;
    }));
  };
  return { ...made, store, plans };
}

describe("priority lanes in the queue", () => {
  const BULK_MESSAGES = 100;
  const BULK_PER_MESSAGE = 1000;

  it("a transactional recipient due now is in the first claim batch, behind 100,000 bulk ones due earlier", {
    timeout: 60_000,
  }, async () => {
    const { store, clock } = await fresh();
    const bulk = (m: number) =>
      store.enqueue(
        msg(Array.from({ length: BULK_PER_MESSAGE }, (_, i) => `b${m}-${i}@big.example`), { lane: "bulk" }),
      );
    await Promise.all(Array.from({ length: BULK_MESSAGES }, (_, m) => bulk(m)));
    await clock.advance(60_000);
    const id = await store.enqueue(msg(["receipt@big.example"], { lane: "transactional" }));

    const batch = await store.claimDue(500, LEASE);
    assert.equal(batch.length, 500);
    assert.deepEqual(
      [batch[0]!.messageId, batch[0]!.address, batch[0]!.lane],
      [id, "receipt@big.example", "transactional"],
      "claimed first",
    );
    assert.ok(batch.slice(1).every((c) => c.lane === "bulk"), "the rest of the batch is bulk");
  });

  it("both claim queries and the next-due query step into the index recipients_due by lane, never over the backlog", async () => {
    const { store, clock, plans } = await recordingStore();
    await store.enqueue(msg(["b@d.example"], { lane: "bulk" }));
    await store.enqueue(msg(["t@d.example"]));
    await clock.advance(1);
    await store.claimDue(10, LEASE);
    await store.nextDueAt();
    const found = await plans();
    const claims = found.filter((p) => p.startsWith("UPDATE"));
    assert.equal(claims.length, 2, found.join("\n\n"));
    for (const plan of claims) {
      // Equality on the lane, a range on the due time: only due rows of one lane are read, in index order.
      assert.match(plan, /SEARCH recipients USING INDEX recipients_due \(lane=\? AND next_attempt_at<\?\)/, plan);
      assert.doesNotMatch(plan, /TEMP B-TREE/, `the index gives the order\n${plan}`);
    }
    const [due] = found.filter((p) => p.startsWith("SELECT MIN"));
    assert.ok(due, found.join("\n\n"));
    // MIN over the second column after an equality on the first: one step into the index per lane.
    assert.equal(due.match(/SEARCH recipients USING (COVERING )?INDEX recipients_due \(lane=\?\)/g)?.length, 2, due);
  });

  it("claims at most bulkLimit bulk recipients, and transactional ones up to the limit", async () => {
    const { store } = await fresh();
    await store.enqueue(msg(["b1@d.example", "b2@d.example", "b3@d.example"], { lane: "bulk" }));
    await store.enqueue(msg(["t1@d.example", "t2@d.example"]));
    const first = await store.claimDue(10, LEASE, 1);
    assert.deepEqual(first.map((c) => [c.address, c.lane]), [
      ["t1@d.example", "transactional"],
      ["t2@d.example", "transactional"],
      ["b1@d.example", "bulk"],
    ]);
    assert.deepEqual(await store.claimDue(10, LEASE, 0), [], "no room for bulk: nothing");
    assert.deepEqual((await store.claimDue(1, LEASE)).map((c) => c.address), ["b2@d.example"]);
  });

  it("mail that names no lane is transactional; the received event says which", async () => {
    const { store, database } = await fresh();
    const plain = await store.enqueue(msg(["a@d.example"]));
    const bulk = await store.enqueue(msg(["b@d.example"], { lane: "bulk" }));
    const lanesOf = await rows(database, "SELECT message_id, lane FROM recipients ORDER BY id");
    assert.deepEqual(lanesOf.map((r) => [r.message_id, r.lane]), [[plain, "transactional"], [bulk, "bulk"]]);
    const received = await rows(database, "SELECT message_id, data FROM events WHERE type = 'received' ORDER BY id");
    assert.deepEqual(received.map((e) => [e.message_id, JSON.parse(String(e.data)).priority]), [
      [plain, "transactional"],
      [bulk, "bulk"],
    ]);
  });

  it("nextDueAt of some lanes only: the scheduler asks for transactional alone while bulk has no room", async () => {
    const { store } = await fresh();
    await store.enqueue(msg(["b@d.example"], { lane: "bulk" }));
    await store.enqueue(msg(["t@d.example"], { sendAt: T0 + 5000 }));
    assert.equal(await store.nextDueAt(), T0);
    assert.equal(await store.nextDueAt(["transactional"]), T0 + 5000);
    assert.equal(await store.nextDueAt(["bulk"]), T0);
  });
});

describe("the queue by recipient domain (GET /v1/queue, steering a destination)", () => {
  it("counts pending recipients by domain and state, with the oldest message, from the index alone", async () => {
    const { store, clock, database } = await fresh();
    const first = await store.enqueue(msg(["a@one.example", "b@two.example"]));
    await clock.advance(1000);
    await store.enqueue(msg(["c@one.example", "d@one.example"]));
    const [claimed] = await store.claimDue(1, LEASE);
    await store.record([outcome(claimed!, "deferred", { nextAttemptAt: T0 + 3_600_000 })]);
    await store.enqueue(msg(["e@three.example"]));
    const delivered = (await store.claimDue(10, LEASE)).find((c) => c.address === "e@three.example")!;
    await store.record([outcome(delivered, "delivered")]);

    await store.enqueue(msg(["f@four.example"]));
    const [f] = await rows(database, "SELECT message_id FROM recipients WHERE address = 'f@four.example'");
    assert.equal(await store.control.hold({ messageId: String(f!.message_id) }), 1);

    const all = await store.byDomain.backlog({ limit: 10 }, 1000);
    assert.deepEqual(all, [
      { domain: "four.example", queued: 0, deferred: 0, held: 1, oldestMessageId: String(f!.message_id) },
      { domain: "one.example", queued: 2, deferred: 1, held: 0, oldestMessageId: first },
      { domain: "two.example", queued: 1, deferred: 0, held: 0, oldestMessageId: first },
    ]);
    assert.deepEqual(await store.byDomain.backlog({ limit: 1 }, 1000).then((l) => l.map((b) => b.domain)), [
      "four.example",
      "one.example",
    ], "one more than the limit, so that the caller sees there are more");
    assert.deepEqual(await store.byDomain.backlog({ domains: ["two.example", "three.example"] }, 1000), [
      { domain: "two.example", queued: 1, deferred: 0, held: 0, oldestMessageId: first },
    ]);
    assert.equal(
      (await store.byDomain.backlog({ domains: ["one.example"] }, 1))[0]!.queued,
      1,
      "counts stop at the cap",
    );

    const plan = await rows(
      database,
      `EXPLAIN QUERY PLAN SELECT count(*) FROM recipients
       WHERE domain = ? AND state IN ('queued', 'deferred', 'held') AND state = 'queued'`,
      ["one.example"],
    );
    const detail = plan.map((r) => String(r.detail)).join("\n");
    assert.match(detail, /USING COVERING INDEX recipients_in_queue/, detail);
  });

  it("due now: deferred recipients and those held until a time, never mail scheduled for later or in flight", async () => {
    const { store, clock, database } = await fresh();
    const HELD_UNTIL = T0 + 7_200_000;
    await store.enqueue(msg(["deferred@d.example", "held@d.example", "leased@d.example", "other@e.example"]));
    await store.enqueue(msg(["later@d.example"], { sendAt: T0 + 3_600_000 }));
    const claims = await store.claimDue(10, LEASE);
    const of = (address: string) => claims.find((c) => c.address === address)!;
    await store.record([
      outcome(of("deferred@d.example"), "deferred", { nextAttemptAt: T0 + 3_600_000 }),
      outcome(of("other@e.example"), "deferred", { nextAttemptAt: T0 + 3_600_000 }),
    ]);
    await store.hold([of("held@d.example").recipientId], HELD_UNTIL);
    const due = async () =>
      Object.fromEntries(
        (await rows(database, "SELECT address, next_attempt_at, attempts FROM recipients ORDER BY id")).map((r) => [
          String(r.address),
          Number(r.next_attempt_at) - T0,
        ]),
      );
    assert.equal((await due())["held@d.example"], HELD_UNTIL - T0, "held: due at the time given, not leased");
    const [held] = await rows(database, "SELECT lease_owner, attempts, state FROM recipients WHERE address = ?", [
      "held@d.example",
    ]);
    assert.deepEqual({ ...held }, { lease_owner: null, attempts: 0, state: "queued" }, "no attempt, no state change");

    await clock.advance(10);
    assert.equal(await store.byDomain.dueNowAt(["d.example"]), 1, "retry: the deferred one");
    assert.equal(await store.moveHeld(HELD_UNTIL, clock.now()), 1, "resume: the held one, found by its hold time");
    assert.deepEqual(await due(), {
      "deferred@d.example": 10,
      "held@d.example": 10,
      "leased@d.example": 10 + LEASE - 10,
      "other@e.example": 3_600_000,
      "later@d.example": 3_600_000,
    });
    const plan = await rows(
      database,
      `EXPLAIN QUERY PLAN UPDATE recipients SET next_attempt_at = ?
       WHERE lane IN ('transactional', 'bulk') AND next_attempt_at = ? AND state IN ('queued', 'deferred')
         AND lease_owner IS NULL`,
      [T0, HELD_UNTIL],
    );
    const detail = plan.map((r) => String(r.detail)).join("\n");
    assert.match(detail, /SEARCH recipients USING INDEX recipients_due \(lane=\? AND next_attempt_at=\?\)/, detail);
  });

  it("claims a domain's pending recipients for a bounce, due or not, but none in flight", async () => {
    const { store } = await fresh();
    await store.enqueue(msg(["leased@d.example"]));
    const [leased] = await store.claimDue(10, LEASE);
    await store.enqueue(msg(["later@d.example", "x@other.example"], { sendAt: T0 + 3_600_000 }));
    const claimed = await store.claimForBounce({ domains: ["d.example"] }, 10, LEASE);
    assert.deepEqual(claimed.map((c) => c.address), ["later@d.example"]);
    assert.deepEqual(await store.claimForBounce({ domains: ["d.example"] }, 10, LEASE), [], "now leased");
    assert.equal(leased?.address, "leased@d.example");
  });
});

function outcome(
  c: { recipientId: number; messageId: string; address: string },
  state: Outcome["state"],
  over: Partial<Outcome> = {},
): Outcome {
  return {
    recipientId: c.recipientId,
    messageId: c.messageId,
    address: c.address,
    state,
    reply: state === "delivered" ? "250 2.0.0 ok" : state === "deferred" ? "451 4.3.0 later" : "550 5.1.1 no such user",
    event: { reply: "r", attempt: 1 },
    ...over,
  };
}

describe("QueueStore.releaseLeases", () => {
  it("makes this node's leased recipients due now and clears the owner", async () => {
    const { store, database, clock } = await fresh();
    await store.enqueue(msg(["a@d.example", "b@d.example"]));
    await store.claimDue(10, LEASE);
    await clock.advance(5);
    assert.equal(await store.releaseLeases(), 2);
    const r = await rows(database, "SELECT lease_owner, next_attempt_at FROM recipients");
    assert.deepEqual(r.map((x) => [x.lease_owner, x.next_attempt_at]), [
      [null, T0 + 5],
      [null, T0 + 5],
    ]);
    assert.equal((await store.claimDue(10, LEASE)).length, 2, "claimable again at once");
  });

  it("leaves other nodes' leases and not-yet-due recipients alone", async () => {
    const { store, database, clock, spool } = await fresh("node-a");
    const other = new QueueStore(database, spool, clock, "node-b");
    await store.enqueue(msg(["mine@d.example"]));
    await store.claimDue(10, LEASE);
    await store.enqueue(msg(["theirs@d.example"]));
    await other.claimDue(10, LEASE);
    await store.enqueue(msg(["future@d.example"], { sendAt: T0 + 10 * LEASE }));
    assert.equal(await store.releaseLeases(), 1);
    const r = await rows(database, "SELECT address, lease_owner, next_attempt_at FROM recipients ORDER BY address");
    assert.deepEqual(r.map((x) => [x.address, x.lease_owner, x.next_attempt_at]), [
      ["future@d.example", null, T0 + 10 * LEASE],
      ["mine@d.example", null, T0],
      ["theirs@d.example", "node-b", T0 + LEASE],
    ]);
  });
});

describe("QueueStore.record", () => {
  it("writes the new state and its event, and releases the lease", async () => {
    const { store, database, clock } = await fresh();
    const id = await store.enqueue(msg(["a@d.example"]));
    const [c] = await store.claimDue(10, LEASE);
    await clock.advance(1000);
    await store.record([outcome(c!, "delivered", { event: { reply: "250 ok", mx: "mx.d.example" } })]);
    const [r] = await rows(database, "SELECT state, attempts, last_reply, lease_owner, updated_at FROM recipients");
    assert.deepEqual([r!.state, r!.attempts, r!.last_reply, r!.lease_owner, r!.updated_at], [
      "delivered",
      1,
      "250 2.0.0 ok",
      null,
      T0 + 1000,
    ]);
    const ev = await rows(database, "SELECT type, recipient, at, data FROM events WHERE message_id = ? ORDER BY id", [
      id,
    ]);
    assert.deepEqual(ev.map((e) => e.type), ["received", "delivered"]);
    assert.equal(ev[1]!.recipient, "a@d.example");
    assert.equal(ev[1]!.at, T0 + 1000);
    assert.deepEqual(JSON.parse(String(ev[1]!.data)), { reply: "250 ok", mx: "mx.d.example" });
  });

  it("a deferral schedules the next attempt and counts the attempt", async () => {
    const { store, database, clock } = await fresh();
    await store.enqueue(msg(["a@d.example"]));
    const [c] = await store.claimDue(10, LEASE);
    await store.record([outcome(c!, "deferred", { nextAttemptAt: T0 + 300_000 })]);
    const [r] = await rows(database, "SELECT state, attempts, next_attempt_at, lease_owner FROM recipients");
    assert.deepEqual([r!.state, r!.attempts, r!.next_attempt_at, r!.lease_owner], ["deferred", 1, T0 + 300_000, null]);
    await clock.advance(300_000 - 1);
    assert.deepEqual(await store.claimDue(10, LEASE), []);
    await clock.advance(1);
    const [again] = await store.claimDue(10, LEASE);
    assert.equal(again!.attempts, 1);
  });

  it("is all or nothing: a failing event leaves every state and event unwritten", async () => {
    const { store, database } = await fresh();
    await store.enqueue(msg(["a@d.example", "b@d.example"]));
    const [a, b] = await store.claimDue(10, LEASE);
    // An event the database cannot take makes the events insert fail after the state updates ran.
    const broken = { ...outcome(b!, "delivered"), event: undefined as unknown as Record<string, unknown> };
    await assert.rejects(store.record([outcome(a!, "bounced"), broken]));
    const r = await rows(database, "SELECT state, attempts FROM recipients ORDER BY id");
    assert.deepEqual(r.map((x) => [x.state, x.attempts]), [["queued", 0], ["queued", 0]]);
    const ev = await rows(database, "SELECT type FROM events ORDER BY id");
    assert.deepEqual(ev.map((e) => e.type), ["received", "received"]);
  });

  it("records several outcomes at once, one event each", async () => {
    const { store, database } = await fresh();
    await store.enqueue(msg(["a@d.example", "b@d.example", "c@d.example"]));
    const claims = (await store.claimDue(10, LEASE)).sort((x, y) => x.address.localeCompare(y.address));
    await store.record([
      outcome(claims[0]!, "delivered"),
      outcome(claims[1]!, "bounced"),
      outcome(claims[2]!, "expired"),
    ]);
    const r = await rows(database, "SELECT address, state FROM recipients ORDER BY address");
    assert.deepEqual(r.map((x) => [x.address, x.state]), [
      ["a@d.example", "delivered"],
      ["b@d.example", "bounced"],
      ["c@d.example", "expired"],
    ]);
    const ev = await rows(database, "SELECT recipient, type FROM events WHERE type != 'received' ORDER BY recipient");
    assert.deepEqual(ev.map((e) => [e.recipient, e.type]), [
      ["a@d.example", "delivered"],
      ["b@d.example", "bounced"],
      ["c@d.example", "expired"],
    ]);
  });
});

describe("the operator's hold, release and retry (QueueControl)", () => {
  it("a held recipient is never claimed, keeps its body, and is released to its state, due when it was due", async () => {
    const { store, database, clock } = await fresh();
    const id = await store.enqueue(msg(["new@d.example", "tried@d.example", "kept@d.example"]));
    const [tried] = (await store.claimDue(10, LEASE)).filter((c) => c.address === "tried@d.example");
    await store.record([outcome(tried!, "deferred", { nextAttemptAt: T0 + 1000 })]);
    await store.releaseLeases();
    assert.equal(await store.control.hold({ messageId: id, address: "NEW@d.example" }), 1);
    assert.equal(await store.control.hold({ messageId: id, address: "tried@d.example" }), 1);
    assert.equal(await store.control.hold({ messageId: id, address: "tried@d.example" }), 0, "held already");
    await clock.advance(5000);
    const claimed = await store.claimDue(10, LEASE);
    assert.deepEqual(claimed.map((c) => c.address), ["kept@d.example"]);
    await store.record([outcome(claimed[0]!, "delivered")]);
    assert.equal(await store.nextDueAt(), undefined, "nothing pending: the held ones are out of the due index");
    assert.ok((await store.loadMessage(id))!.body.byteLength > 0, "a held recipient keeps its message's body");

    assert.equal(await store.control.retryNow({ messageId: id }), 0, "retry leaves held recipients alone");
    assert.equal(await store.control.release({ messageId: id }), 2);
    const r = await rows(database, "SELECT address, state, next_attempt_at FROM recipients ORDER BY address");
    assert.deepEqual(r.map((x) => [x.address, x.state, Number(x.next_attempt_at) - T0]), [
      ["kept@d.example", "delivered", 5000],
      ["new@d.example", "queued", 0],
      ["tried@d.example", "deferred", 1000],
    ]);
    const ev = await rows(
      database,
      "SELECT type, recipient, data FROM events WHERE type IN ('held', 'released') ORDER BY id",
    );
    assert.deepEqual(ev.map((e) => [e.type, e.recipient, e.data]), [
      ["held", "new@d.example", '{"state":"queued"}'],
      ["held", "tried@d.example", '{"state":"deferred"}'],
      ["released", "new@d.example", "{}"],
      ["released", "tried@d.example", "{}"],
    ]);
  });

  it("release gives back a held recipient's lease left by a bounce that was never recorded", async () => {
    const { store, database } = await fresh();
    const id = await store.enqueue(msg(["a@d.example"]));
    await store.control.hold({ messageId: id });
    assert.equal((await store.claimForBounce({ messageId: id }, 10, LEASE)).length, 1, "a bounce claims it, held");
    assert.equal(await store.control.release({ messageId: id }), 1);
    const [r] = await rows(database, "SELECT state, lease_owner FROM recipients");
    assert.deepEqual({ ...r }, { state: "queued", lease_owner: null });
  });

  it("a deferral does not revive a recipient held or cancelled while it was being sent; a delivery stands", async () => {
    const { store, database } = await fresh();
    const id = await store.enqueue(msg(["held@d.example", "cancelled@d.example", "delivered@d.example"]));
    const claims = await store.claimDue(10, LEASE);
    const of = (address: string) => claims.find((c) => c.address === address)!;
    await store.control.hold({ messageId: id, address: "held@d.example" });
    await store.control.hold({ messageId: id, address: "delivered@d.example" });
    await store.control.cancel({ messageId: id, address: "cancelled@d.example" });
    await store.record([
      outcome(of("held@d.example"), "deferred", { nextAttemptAt: T0 + 1000 }),
      outcome(of("cancelled@d.example"), "deferred", { nextAttemptAt: T0 + 1000 }),
      outcome(of("delivered@d.example"), "delivered"),
    ]);
    const r = await rows(database, "SELECT address, state, attempts FROM recipients ORDER BY id");
    assert.deepEqual(r.map((x) => [x.address, x.state, x.attempts]), [
      ["held@d.example", "held", 1],
      ["cancelled@d.example", "cancelled", 1],
      ["delivered@d.example", "delivered", 1],
    ]);
  });
});

describe("QueueStore.cancel", () => {
  it("cancels pending recipients only, one cancelled event each", async () => {
    const { store, database, clock } = await fresh();
    const id = await store.enqueue(msg(["done@d.example", "q1@d.example", "q2@d.example"]));
    const claims = await store.claimDue(10, LEASE);
    const done = claims.find((c) => c.address === "done@d.example")!;
    const q2 = claims.find((c) => c.address === "q2@d.example")!;
    await store.record([outcome(done, "delivered"), outcome(q2, "deferred", { nextAttemptAt: T0 + 1000 })]);
    await clock.advance(7);
    assert.equal(await store.control.cancel({ messageId: id }), 2);
    const r = await rows(database, "SELECT address, state, lease_owner FROM recipients ORDER BY address");
    assert.deepEqual(r.map((x) => [x.address, x.state, x.lease_owner]), [
      ["done@d.example", "delivered", null],
      ["q1@d.example", "cancelled", null],
      ["q2@d.example", "cancelled", null],
    ]);
    const ev = await rows(database, "SELECT recipient, at FROM events WHERE type = 'cancelled' ORDER BY recipient");
    assert.deepEqual(ev.map((e) => [e.recipient, e.at]), [
      ["q1@d.example", T0 + 7],
      ["q2@d.example", T0 + 7],
    ]);
    assert.equal(await store.control.cancel({ messageId: id }), 0, "a second cancel finds nothing pending");
    assert.equal(
      await store.control.cancel({ messageId: "01ARZ3NDEKTSV4RRFFQ69G5FAV" }),
      0,
      "an unknown id cancels nothing",
    );
  });

  it(
    "does not overwrite a recipient that reached a final state before its transaction",
    async () => {
      const { store, database, clock, spool } = await fresh();
      const id = await store.enqueue(msg(["a@d.example"]));
      const [c] = await store.claimDue(10, LEASE);
      // The delivery loop records its outcome just before cancel()'s transaction runs.
      const racing: Database = {
        ...database,
        client: new Proxy(database.client, {
          get(target, prop, receiver) {
            if (prop === "batch") {
              return async (...args: unknown[]) => {
                await store.record([outcome(c!, "delivered")]);
                return (target.batch as (...a: unknown[]) => Promise<unknown>)(...args);
              };
            }
            const value = Reflect.get(target, prop, receiver);
            return typeof value === "function" ? value.bind(target) : value;
          },
        }),
      };
      await new QueueStore(racing, spool, clock, "node-a").control.cancel({ messageId: id });
      const [r] = await rows(database, "SELECT state FROM recipients");
      assert.equal(r!.state, "delivered");
      const ev = await rows(database, "SELECT type FROM events ORDER BY id");
      assert.deepEqual(ev.map((e) => e.type), ["received", "delivered"]);
    },
  );
});

describe("the queue drops a finished message's body", () => {
  /** The body's length while the row still refers to one, 0 once dropped. */
  const bodyLength = async (database: Database, id: string) => {
    const [row] = await rows(database, "SELECT spool_segment, size, length(body) AS n FROM messages WHERE id = ?", [
      id,
    ]);
    assert.equal(row!.n, 0, "never in the row");
    return row!.spool_segment === null ? 0 : Number(row!.size);
  };

  it("once every recipient is final and no DSN is owed, in the transaction that finished it", async () => {
    const { store, database } = await fresh();
    const id = await store.enqueue(msg(["ok@d.example", "later@d.example", "gone@d.example"]));
    const claims = await store.claimDue(10, LEASE);
    const [ok, later, gone] = ["ok", "later", "gone"].map((l) => claims.find((c) => c.address === `${l}@d.example`)!);
    await store.record([outcome(ok!, "delivered"), outcome(later!, "deferred", { nextAttemptAt: T0 })]);
    assert.equal(await bodyLength(database, id), body.length, "kept while a recipient is deferred");
    await store.record([outcome(gone!, "bounced", { dsn: "failure" })]);
    const [again] = await store.claimDue(10, LEASE);
    await store.record([outcome(again!, "delivered")]);
    assert.equal(await bodyLength(database, id), body.length, "kept while a DSN is owed (it may return the original)");
    const [pending] = await store.dsns.pending(10);
    assert.equal(pending!.body.length, body.length);
    await store.dsns.settle([{
      messageId: id,
      recipients: pending!.recipients.map((r) => ({ recipientId: r.recipientId, address: r.address, kind: r.kind })),
    }]);
    assert.equal(await bodyLength(database, id), 0);
    const [m] = await rows(database, "SELECT size FROM messages WHERE id = ?", [id]);
    assert.equal(m!.size, body.length, "the row and its size stay for the message view");
  });

  it("when the last recipient delivered needs no DSN, at once; other messages keep theirs", async () => {
    const { store, database } = await fresh();
    const done = await store.enqueue(msg(["a@d.example"]));
    const waiting = await store.enqueue(msg(["b@d.example"]));
    const claims = await store.claimDue(10, LEASE);
    await store.record([outcome(claims.find((c) => c.messageId === done)!, "delivered")]);
    assert.equal(await bodyLength(database, done), 0);
    assert.equal(await bodyLength(database, waiting), body.length);
  });

  it("when the rest of a message is cancelled", async () => {
    const { store, database } = await fresh();
    const id = await store.enqueue(msg(["a@d.example", "b@d.example"]));
    const [a] = (await store.claimDue(10, LEASE)).filter((c) => c.address === "a@d.example");
    await store.record([outcome(a!, "delivered")]);
    assert.equal(await bodyLength(database, id), body.length);
    await store.control.cancel({ messageId: id });
    assert.equal(await bodyLength(database, id), 0);
  });
});

describe("Retention.purgeFinished (RELAY_RETENTION)", () => {
  const count = async (database: Database, table: string, id: string) =>
    Number(
      (await rows(
        database,
        `SELECT count(*) AS n FROM ${table} WHERE ${table === "messages" ? "id" : "message_id"} = ?`,
        [id],
      ))[0]!.n,
    );

  it("deletes finished messages received before the cutoff with their recipients and events, and nothing else", async () => {
    const { store, database, clock } = await fresh();
    const old = await store.enqueue(msg(["a@d.example"]));
    const oldPending = await store.enqueue(msg(["b@d.example"]));
    const oldOwed = await store.enqueue(msg(["c@d.example"]));
    const claims = await store.claimDue(10, LEASE);
    const of = (id: string) => claims.find((c) => c.messageId === id)!;
    await store.record([
      outcome(of(old), "delivered"),
      outcome(of(oldPending), "deferred", { nextAttemptAt: T0 + 86_400_000 }),
      outcome(of(oldOwed), "bounced", { dsn: "failure" }),
    ]);
    await clock.advance(10_000);
    const recent = await store.enqueue(msg(["d@d.example"]));
    const [r] = await store.claimDue(10, LEASE);
    await store.record([outcome(r!, "delivered")]);
    assert.equal(await store.retention.purgeFinished(T0 + 5_000, 100), 1);
    for (const table of ["messages", "recipients", "events"]) {
      assert.equal(await count(database, table, old), 0, `${table} of the finished old message`);
      for (const kept of [oldPending, oldOwed, recent]) {
        assert.ok((await count(database, table, kept)) > 0, `${table} of ${kept}`);
      }
    }
    assert.equal(await store.retention.purgeFinished(T0 + 5_000, 100), 0, "nothing more to purge");
  });

  it("works in batches of the given size", async () => {
    const { store, clock } = await fresh();
    for (let i = 0; i < 5; i++) await store.enqueue(msg([`x${i}@d.example`]));
    await store.record((await store.claimDue(10, LEASE)).map((c) => outcome(c, "delivered")));
    await clock.advance(10);
    assert.equal(await store.retention.purgeFinished(clock.now(), 2), 2);
    assert.equal(await store.retention.purgeFinished(clock.now(), 2), 2);
    assert.equal(await store.retention.purgeFinished(clock.now(), 2), 1);
  });
});

describe("EventLog.listEvents", () => {
  it("pages by id cursor, in id order, with an optional filter", async () => {
    const { store, clock } = await fresh();
    const a = await store.enqueue(msg(["a1@d.example", "a2@d.example"]));
    await clock.advance(1);
    const b = await store.enqueue(msg(["b1@d.example"]));
    await store.control.cancel({ messageId: a });

    const page1 = await store.events.listEvents(0, 2);
    assert.deepEqual(page1.map((e) => [e.type, e.recipient]), [
      ["received", "a1@d.example"],
      ["received", "a2@d.example"],
    ]);
    const page2 = await store.events.listEvents(page1.at(-1)!.id, 2);
    assert.deepEqual(page2.map((e) => [e.type, e.messageId, e.recipient]), [
      ["received", b, "b1@d.example"],
      ["cancelled", a, "a1@d.example"],
    ]);
    const page3 = await store.events.listEvents(page2.at(-1)!.id, 2);
    assert.deepEqual(page3.map((e) => [e.type, e.recipient]), [["cancelled", "a2@d.example"]]);
    assert.deepEqual(await store.events.listEvents(page3.at(-1)!.id, 2), []);

    const all = await store.events.listEvents(0, 100);
    const ids = all.map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
    assert.equal(new Set(ids).size, 5);
    assert.deepEqual(all[0]!.data, {
      mail_from: "sender@src.example",
      source: "smtp",
      size: body.byteLength,
      priority: "transactional",
    });

    const onlyB = await store.events.listEvents(0, 100, { messageId: b });
    assert.deepEqual(onlyB.map((e) => e.recipient), ["b1@d.example"]);
  });

  it("orders by the cursor (id), not by time, even when the clock steps back", async () => {
    const { store, clock } = await fresh();
    clock.set(T0 + 60_000);
    await store.enqueue(msg(["early@d.example"]));
    clock.set(T0); // NTP stepped the clock back
    await store.enqueue(msg(["late@d.example"]));
    const first = await store.events.listEvents(0, 1);
    assert.deepEqual(first.map((e) => e.recipient), ["early@d.example"]);
    const next = await store.events.listEvents(first[0]!.id, 10);
    assert.deepEqual(next.map((e) => e.recipient), ["late@d.example"], "the cursor neither skips nor repeats");
  });
});

describe("migrations", () => {
  it("applied twice: the second run applies nothing and changes nothing", async () => {
    const { database } = await fresh();
    const schemaSql = async () =>
      (await rows(database, "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"))
        .map((r) => [
          r.type,
          r.name,
          r.sql,
        ]);
    const before = await schemaSql();
    const migrated = await rows(database, "SELECT tag, applied_at FROM relay_migrations ORDER BY tag");
    assert.deepEqual(migrated.map((m) => m.tag), migrationFiles().map((f) => f.tag).sort());
    assert.deepEqual(await applyMigrations(database.client, migrationFiles(), T0 + 999), []);
    assert.deepEqual(await schemaSql(), before);
    assert.deepEqual(await rows(database, "SELECT tag, applied_at FROM relay_migrations ORDER BY tag"), migrated);
  });

  it("a first run applies every migration in journal order and creates the queue tables", async () => {
    const dir = mkdtempSync(join(tmpdir(), "relay-migrate-"));
    dirs.push(dir);
    const database = await openDatabase(`file:${join(dir, "sub", "relay.db")}`);
    opened.push(database);
    const files = migrationFiles();
    assert.ok(files.length >= 1);
    assert.deepEqual(await applyMigrations(database.client, files, T0), files.map((f) => f.tag));
    const tables = (await rows(database, "SELECT name FROM sqlite_master WHERE type = 'table'")).map((r) => r.name);
    for (const t of ["messages", "recipients", "events", "settings", "relay_migrations"]) {
      assert.ok(tables.includes(t), t);
    }
    const indexes = (await rows(database, "SELECT name FROM sqlite_master WHERE type = 'index'")).map((r) => r.name);
    assert.ok(indexes.includes("recipients_due"));
  });

  it("opens the file database in WAL mode with synchronous=FULL", async () => {
    const { database } = await fresh();
    const [j] = await rows(database, "PRAGMA journal_mode");
    assert.equal(String(Object.values(j!)[0]).toLowerCase(), "wal");
    const [s] = await rows(database, "PRAGMA synchronous");
    assert.equal(Number(Object.values(s!)[0]), 2, "2 = FULL");
  });
});
