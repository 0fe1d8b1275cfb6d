import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reply } from "../../src/core/reply.ts";
import { DsnSweeper, parseReplyText } from "../../src/delivery/dsn-sweeper.ts";
import { OutcomeRecorder } from "../../src/delivery/outcomes.ts";
import type { RecipientResult } from "../../src/delivery/work.ts";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import type { Claim, NewMessage } from "../../src/queue/records.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const T0 = 1_700_000_000_000;
const LEASE = 60_000;
const HOUR = 3_600_000;

const dirs: string[] = [];
const opened: Database[] = [];
after(async () => {
  for (const d of opened) await d.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function fresh(delayWarningAfter = 4 * HOUR) {
  const dir = mkdtempSync(join(tmpdir(), "relay-dsn-"));
  dirs.push(dir);
  const database = await openDatabase(`file:${join(dir, "relay.db")}`);
  opened.push(database);
  await applyMigrations(database.client, migrationFiles(), T0);
  const clock = new FakeClock(T0);
  const store = new QueueStore(database, await BodySpool.open(join(dir, "spool")), clock, "node-a");
  const recorder = new OutcomeRecorder({
    store,
    clock,
    maxQueueTime: 5 * 24 * HOUR,
    greylistRetry: 5 * 60_000,
    delayWarningAfter,
    settled: () => undefined,
    log: () => undefined,
  });
  const sweeper = new DsnSweeper({
    store,
    clock,
    hostname: "relay.test",
    maxQueueTime: 5 * 24 * HOUR,
    log: () => undefined,
  });
  const rows = async (sql: string, args: (string | number)[] = []) =>
    (await database.client.execute({ sql, args })).rows;
  return { database, clock, store, recorder, sweeper, rows };
}

const body = new TextEncoder().encode("Subject: original\r\n\r\nhello\r\n");
const msg = (to: { address: string; notify?: string[] }[], over: Partial<NewMessage> = {}): NewMessage => ({
  mailFrom: "sender@src.example",
  recipients: to.map((r) => ({ address: r.address, domain: r.address.split("@")[1]!, notify: r.notify })),
  body,
  source: "smtp",
  ...over,
});

const bounced = (address: string): RecipientResult => ({
  address,
  reply: reply(550, "5.1.1", "no such user"),
  disposition: "bounced",
  category: "bad-mailbox",
  remoteMta: "mx.d.example",
});
const deferred = (address: string): RecipientResult => ({
  address,
  reply: reply(451, "4.3.0", "later"),
  disposition: "deferred",
  category: "other",
});
const delivered = (address: string, dsnPassedOn = false): RecipientResult => ({
  address,
  reply: reply(250, "2.0.0", "ok"),
  disposition: "delivered",
  category: "other",
  ...(dsnPassedOn ? { dsnPassedOn } : {}),
});

async function report(recorder: OutcomeRecorder, claims: Claim[], results: RecipientResult[]) {
  await recorder.report({ messageId: claims[0]!.messageId, mailFrom: claims[0]!.mailFrom, claims }, results, [HOUR]);
}

const text = (b: Uint8Array) => new TextDecoder("latin1").decode(b);

describe("OutcomeRecorder: which outcome owes which DSN", () => {
  it("failure unless NOTIFY declines it; success only when asked and not passed on; nothing for the null sender", async () => {
    const { store, recorder, rows } = await fresh();
    await store.enqueue(msg([
      { address: "a@d.example" },
      { address: "b@d.example", notify: ["NEVER"] },
      { address: "c@d.example", notify: ["SUCCESS"] },
      { address: "e@d.example", notify: ["SUCCESS"] },
      { address: "f@d.example" },
    ]));
    await store.enqueue(msg([{ address: "g@d.example" }], { mailFrom: "" }));
    const claims = await store.claimDue(10, LEASE);
    const by = (a: string) => claims.filter((c) => c.address === a);
    await report(recorder, [
      ...by("a@d.example"),
      ...by("b@d.example"),
      ...by("c@d.example"),
      ...by("e@d.example"),
      ...by("f@d.example"),
    ], [
      bounced("a@d.example"),
      bounced("b@d.example"),
      delivered("c@d.example"),
      delivered("e@d.example", true),
      delivered("f@d.example"),
    ]);
    await report(recorder, by("g@d.example"), [bounced("g@d.example")]);
    const marks = Object.fromEntries(
      (await rows("SELECT address, dsn_pending, last_mta FROM recipients")).map((r) => [r.address, r.dsn_pending]),
    );
    assert.deepEqual(marks, {
      "a@d.example": "failure",
      "b@d.example": null,
      "c@d.example": "success",
      "e@d.example": null,
      "f@d.example": null,
      "g@d.example": null,
    });
  });

  it("a delay warning once the recipient has waited long enough, once, and only when DELAY is asked for or NOTIFY is absent", async () => {
    const { store, recorder, rows, clock } = await fresh(HOUR);
    await store.enqueue(
      msg([{ address: "a@d.example" }, { address: "b@d.example", notify: ["FAILURE"] }, {
        address: "c@d.example",
        notify: ["DELAY"],
      }]),
    );
    const pending = async () =>
      Object.fromEntries(
        (await rows("SELECT address, dsn_pending FROM recipients")).map((r) => [r.address, r.dsn_pending]),
      );
    const attempt = async () => {
      const claims = await store.claimDue(10, LEASE);
      assert.equal(claims.length, 3);
      await report(recorder, claims, claims.map((c) => deferred(c.address)));
    };
    await attempt(); // at once: not late yet
    assert.deepEqual(await pending(), { "a@d.example": null, "b@d.example": null, "c@d.example": null });
    await clock.advance(2 * HOUR); // past the retry (1 h plus jitter) and the warning threshold
    await attempt();
    assert.deepEqual(await pending(), { "a@d.example": "delay", "b@d.example": null, "c@d.example": "delay" });
    await rows("UPDATE recipients SET dsn_pending = NULL"); // as if the sweeper had sent them
    await clock.advance(2 * HOUR);
    await attempt();
    assert.deepEqual(
      await pending(),
      { "a@d.example": null, "b@d.example": null, "c@d.example": null },
      "never a second warning",
    );
  });

  it("RELAY_DELAY_WARNING_AFTER=0: no delay warnings", async () => {
    const { store, recorder, rows, clock } = await fresh(0);
    await store.enqueue(msg([{ address: "a@d.example", notify: ["DELAY"] }]));
    await clock.advance(10 * HOUR);
    const claims = await store.claimDue(10, LEASE);
    await report(recorder, claims, [deferred("a@d.example")]);
    assert.equal((await rows("SELECT dsn_pending FROM recipients"))[0]!.dsn_pending, null);
  });

  it("a pending delay warning overtaken by delivery is dropped as stale", async () => {
    const { store, recorder, rows, clock } = await fresh(HOUR);
    await store.enqueue(msg([{ address: "a@d.example" }]));
    await clock.advance(HOUR);
    let claims = await store.claimDue(10, LEASE);
    await report(recorder, claims, [deferred("a@d.example")]);
    assert.equal((await rows("SELECT dsn_pending FROM recipients"))[0]!.dsn_pending, "delay");
    await clock.advance(2 * HOUR);
    claims = await store.claimDue(10, LEASE);
    await report(recorder, claims, [delivered("a@d.example")]);
    assert.equal((await rows("SELECT dsn_pending FROM recipients"))[0]!.dsn_pending, null);
  });
});

describe("DsnSweeper: one DSN per message, atomically", () => {
  it("waits while a recipient of the message is in flight, then sends one DSN for all and clears the marks", async () => {
    const { store, recorder, sweeper, rows } = await fresh();
    const id = await store.enqueue(
      msg([{ address: "a@one.example" }, { address: "b@two.example" }, { address: "ok@two.example" }]),
    );
    const claims = await store.claimDue(10, LEASE);
    const [a, b, ok] = ["a@one.example", "b@two.example", "ok@two.example"].map((x) =>
      claims.find((c) => c.address === x)!
    );
    await report(recorder, [a!], [bounced("a@one.example")]);
    assert.equal(await sweeper.sweep(), 0, "b and ok are still in flight");
    await report(recorder, [b!, ok!], [bounced("b@two.example"), delivered("ok@two.example")]);
    assert.equal(await sweeper.sweep(), 1);
    assert.equal(await sweeper.sweep(), 0, "the marks went with the DSN");
    const dsns = await rows("SELECT id, mail_from, source FROM messages WHERE source = 'bounce'");
    assert.equal(dsns.length, 1);
    const dsn = text((await store.loadMessage(String(dsns[0]!.id)))!.body);
    assert.deepEqual([...dsn.matchAll(/^Final-Recipient: rfc822; (\S+)\r$/gm)].map((m) => m[1]), [
      "a@one.example",
      "b@two.example",
    ]);
    assert.match(dsn, /^Remote-MTA: dns; mx\.d\.example\r$/m);
    const [rcpt] = await rows("SELECT address, domain, state FROM recipients WHERE message_id != ?", [id]);
    assert.deepEqual({ ...rcpt }, { address: "sender@src.example", domain: "src.example", state: "queued" });
    assert.equal((await rows("SELECT COUNT(*) AS n FROM recipients WHERE dsn_pending IS NOT NULL"))[0]!.n, 0);
  });

  it("a lease that ran out (a crashed attempt) does not hold the DSN back", async () => {
    const { store, recorder, sweeper, clock } = await fresh();
    await store.enqueue(msg([{ address: "a@one.example" }, { address: "b@two.example" }]));
    const claims = await store.claimDue(10, LEASE);
    await report(recorder, [claims[0]!], [bounced(claims[0]!.address)]);
    assert.equal(await sweeper.sweep(), 0);
    await clock.advance(LEASE + 1);
    assert.equal(await sweeper.sweep(), 1);
  });

  it("a delay warning says when the relay gives up, and returns headers only", async () => {
    const { store, recorder, sweeper, rows, clock } = await fresh(HOUR);
    await store.enqueue(msg([{ address: "a@d.example", notify: ["DELAY"] }], { dsnEnvid: "env-1" }));
    await clock.advance(HOUR);
    const claims = await store.claimDue(10, LEASE);
    await report(recorder, claims, [deferred("a@d.example")]);
    assert.equal(await sweeper.sweep(), 1);
    const dsn = text(
      (await store.loadMessage(String((await rows("SELECT id FROM messages WHERE source = 'bounce'"))[0]!.id)))!.body,
    );
    assert.match(dsn, /^Action: delayed\r$/m);
    assert.match(dsn, /^Status: 4\.3\.0\r$/m);
    assert.match(dsn, /^Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 \+0000\r$/m);
    assert.match(dsn, /^Original-Envelope-Id: env-1\r$/m);
    assert.match(dsn, /^Content-Type: text\/rfc822-headers\r$/m);
    assert.doesNotMatch(dsn, /hello/);
  });

  it("the sweep's query runs on the partial index recipients_dsn_pending", async () => {
    const { rows } = await fresh();
    const plan = await rows(
      `EXPLAIN QUERY PLAN SELECT DISTINCT message_id FROM recipients AS p WHERE p.dsn_pending IS NOT NULL LIMIT 10`,
    );
    assert.match(plan.map((r) => String(r.detail)).join("\n"), /recipients_dsn_pending/);
  });

  it("parses a stored reply back", () => {
    assert.deepEqual(parseReplyText("550 5.1.1 no such user"), reply(550, "5.1.1", "no such user"));
    assert.deepEqual(parseReplyText("421 busy"), reply(421, undefined, "busy"));
    assert.equal(parseReplyText(undefined).code, 451);
  });
});

describe("RELAY_DELAY_WARNING_AFTER", () => {
  it("defaults to 4h; takes a duration; 0 or off disables; anything else is a usage error naming it", async () => {
    const { loadConfig } = await import("../../src/config/load.ts");
    assert.equal(loadConfig({}, "host.test").delayWarningAfter, 4 * HOUR);
    assert.equal(loadConfig({ RELAY_DELAY_WARNING_AFTER: "1s" }, "host.test").delayWarningAfter, 1000);
    assert.equal(loadConfig({ RELAY_DELAY_WARNING_AFTER: "0" }, "host.test").delayWarningAfter, 0);
    assert.equal(loadConfig({ RELAY_DELAY_WARNING_AFTER: "off" }, "host.test").delayWarningAfter, 0);
    assert.throws(
      () => loadConfig({ RELAY_DELAY_WARNING_AFTER: "soon" }, "host.test"),
      (e: Error & { problems?: string[] }) =>
        JSON.stringify(e.problems ?? e.message).includes("RELAY_DELAY_WARNING_AFTER"),
    );
  });
});
