import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { verpAddress } from "../../src/core/verp.ts";
import { FeedbackReceiver } from "../../src/feedback/receiver.ts";
import { SuppressionStore } from "../../src/queue/suppressions.ts";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { bounceSample } from "../helpers/bounce-samples.ts";

const T0 = Date.UTC(2026, 11, 6, 12);
const DOMAIN = "bounces.example.test";
const KEY = new Uint8Array(32).fill(3);

describe("FeedbackReceiver: verified feedback becomes events and suppressions; nothing else counts", () => {
  let dir: string;
  let db: Database;
  let receiver: FeedbackReceiver;
  let messageId: string;
  const ids = new Map<string, number>();
  let suppressions: SuppressionStore;
  /** The suppression list as the store left it, in key order. */
  const suppressed = async () =>
    (await suppressions.list({ limit: 100 })).entries.map(({ address, scope, reason, source }) => ({
      address,
      scope,
      reason,
      source,
    }));
  const unsubscribedBy: string[] = [];
  const logged: string[] = [];

  const feedbackEvents = async () =>
    (await db.client.execute(
      "SELECT type, message_id, recipient, data FROM events WHERE type IN ('bounced', 'complained') ORDER BY id",
    ))
      .rows.map((r) => ({
        type: r.type,
        messageId: r.message_id,
        recipient: r.recipient,
        ...JSON.parse(String(r.data)),
      }));
  const verp = (address: string) => verpAddress(messageId, ids.get(address)!, DOMAIN, KEY);
  const receive = (sample: string, to: string, rcpt: string, returnPath = to) =>
    receiver.receive({
      recipients: [to],
      mailFrom: "",
      body: bounceSample(sample, rcpt, returnPath),
      clientIp: "192.0.2.9",
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "relay-feedback-"));
    db = await openDatabase(`file:${join(dir, "relay.db")}`);
    await applyMigrations(db.client, migrationFiles(), T0);
    const clock = { now: () => T0 };
    const store = new QueueStore(db, await BodySpool.open(join(dir, "spool")), clock, "node", ["bad-mailbox"]);
    suppressions = new SuppressionStore(db, clock);
    const addresses = ["hard@dest.test", "soft@dest.test", "full@dest.test", "fbl@dest.test", "never@dest.test"];
    messageId = await store.enqueue({
      mailFrom: "news@example.test",
      recipients: addresses.map((address) => ({ address, domain: "dest.test" })),
      body: new TextEncoder().encode("From: news@example.test\r\nSubject: s\r\n\r\nx\r\n"),
      source: "http",
      returnPathDomain: DOMAIN,
    });
    const claims = await store.claimDue(10, 60_000);
    for (const c of claims) ids.set(c.address, c.recipientId);
    // Every recipient but never@ was handed to a server.
    await store.record(
      claims.filter((c) => c.address !== "never@dest.test").map((c) => ({
        recipientId: c.recipientId,
        messageId,
        address: c.address,
        state: "delivered" as const,
        reply: "250 ok",
        event: {},
      })),
    );
    receiver = new FeedbackReceiver({
      store: store.feedback,
      bounceDomain: DOMAIN,
      verpKey: KEY,
      log: (_level, message) => logged.push(message),
      unsubscribeByMail: async (rcpt) => {
        if (!rcpt.startsWith("unsubscribe+")) return "unknown";
        unsubscribedBy.push(rcpt);
        return "unsubscribed";
      },
    });
  });
  after(async () => {
    await db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a mail to an unsubscribe address is an unsubscribe, not read as a bounce", async () => {
    const before = (await feedbackEvents()).length;
    await receive("gmail", `unsubscribe+abc@${DOMAIN}`, "hard@dest.test");
    assert.deepEqual(unsubscribedBy, [`unsubscribe+abc@${DOMAIN}`]);
    assert.equal((await feedbackEvents()).length, before, "no bounce recorded");
  });

  it("a hard bounce: a bounced event with the category and reply, and a global hard-bounce suppression", async () => {
    await receive("gmail", verp("hard@dest.test"), "hard@dest.test");
    const [event] = await feedbackEvents();
    assert.equal(event.type, "bounced");
    assert.equal(event.messageId, messageId);
    assert.equal(event.recipient, "hard@dest.test");
    assert.equal(event.bounce_type, "hard");
    assert.equal(event.category, "bad-mailbox");
    assert.equal(event.status, "5.1.1");
    assert.match(event.reply, /^550 5\.1\.1 The email account that you tried to reach does not exist/);
    assert.deepEqual(await suppressed(), [{
      address: "hard@dest.test",
      scope: { kind: "global" },
      reason: "hard-bounce",
      source: { event: "bounced", messageId },
    }]);
  });

  it("a delay (4.x.x) is a soft bounce and suppresses nothing", async () => {
    await receive("exim-delayed", verp("soft@dest.test"), "soft@dest.test");
    const event = (await feedbackEvents()).at(-1);
    assert.equal(event.recipient, "soft@dest.test");
    assert.equal(event.bounce_type, "soft");
    assert.equal(event.category, "quota-issues");
    assert.equal(event.reply, "452 4.2.2 Mailbox over quota");
    assert.equal((await suppressed()).length, 1);
  });

  it("a hard bounce of a category the rules do not suppress (a full mailbox) is recorded, not suppressed", async () => {
    await receive("microsoft", verp("full@dest.test"), "full@dest.test");
    const event = (await feedbackEvents()).at(-1);
    assert.equal(event.recipient, "full@dest.test");
    assert.equal(event.bounce_type, "hard");
    assert.equal(event.category, "quota-issues");
    assert.deepEqual((await suppressed()).map((e) => e.address), ["hard@dest.test"]);
  });

  it("a complaint sent to a fixed address is found through the reported message's Return-Path", async () => {
    await receive("arf", `fbl@${DOMAIN}`, "fbl@dest.test", verp("fbl@dest.test"));
    const event = (await feedbackEvents()).at(-1);
    assert.equal(event.type, "complained");
    assert.equal(event.recipient, "fbl@dest.test");
    assert.equal(event.feedback_type, "abuse");
    assert.equal(event.user_agent, "ISP-FBL/1.0");
    assert.deepEqual((await suppressed()).find((e) => e.address === "fbl@dest.test"), {
      address: "fbl@dest.test",
      scope: { kind: "global" },
      reason: "complaint",
      source: { event: "complained", messageId },
    });
  });

  it("forged, unsent, unknown, auto-replies and anything else: logged, no event, no suppression", async () => {
    const before = await feedbackEvents();
    const forged = verpAddress(messageId, ids.get("hard@dest.test")!, DOMAIN, new Uint8Array(32).fill(4));
    await receive("postfix", forged, "hard@dest.test");
    await receive("arf", `fbl@${DOMAIN}`, "fbl@dest.test", forged);
    await receive("postfix", verp("never@dest.test"), "never@dest.test");
    await receive("postfix", verpAddress("01JV8ZQ4XK7M2N3P4Q5R6S7T8V", 1, DOMAIN, KEY), "hard@dest.test");
    await receive("autoreply-ooo", verp("hard@dest.test"), "hard@dest.test");
    await receive("plain", verp("hard@dest.test"), "hard@dest.test");
    await receiver.receive({
      recipients: [verp("hard@dest.test")],
      mailFrom: "",
      body: new Uint8Array([0xff, 0xfe]),
      clientIp: "192.0.2.9",
    });
    assert.deepEqual(await feedbackEvents(), before);
    assert.equal((await suppressed()).length, 2);
    assert.deepEqual(logged.filter((m) => m.startsWith("mail to the bounce domain dropped")), [
      "mail to the bounce domain dropped: its VERP address does not verify (a tag our key did not make)",
      "mail to the bounce domain dropped: its VERP address does not verify (a tag our key did not make)",
      `mail to the bounce domain dropped: it is about message ${messageId} recipient ${
        ids.get("never@dest.test")
      }, which was never sent`,
      "mail to the bounce domain dropped: it is about message 01JV8ZQ4XK7M2N3P4Q5R6S7T8V recipient 1, which was never sent",
      "mail to the bounce domain dropped: an automatic reply (Subject: Out of Office: December news)",
      "mail to the bounce domain dropped: neither a bounce nor a feedback report",
      "mail to the bounce domain dropped: neither a bounce nor a feedback report",
    ]);
  });
});
