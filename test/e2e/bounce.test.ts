import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

describe("bounces: RFC 3464 DSN back to the sender", () => {
  let world: World;
  before(async () => {
    world = await startWorld({ env: { RELAY_MAX_QUEUE_TIME: "3s" } });
  });
  after(async () => {
    await world?.close();
  });

  it("a 5xx recipient produces one DSN to the sender's domain; the others are delivered", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "bob@sender.test",
      ["permfail@dest.test", "fine@dest.test"],
      "Subject: will bounce\r\n\r\nx\r\n",
    );
    const id = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    const bounced = await world.waitForEvent((e) => e.type === "bounced" && e.message_id === id);
    assert.equal(bounced.recipient, "permfail@dest.test");
    assert.equal(bounced.bounce_type, "hard");
    assert.equal(bounced.category, "bad-mailbox");
    await world.destination.waitFor((m) =>
      m.some((r) => r.mailFrom === "" && r.recipients.includes("bob@sender.test"))
    );
    const dsn = world.destination.messages.find((m) => m.mailFrom === "" && m.recipients.includes("bob@sender.test"))!;
    assert.match(dsn.data, /^Content-Type: multipart\/report;\s+report-type=delivery-status/im);
    assert.match(dsn.data, /^Final-Recipient: rfc822; ?permfail@dest\.test$/im);
    assert.match(dsn.data, /^Action: failed$/im);
    assert.match(dsn.data, /^Status: 5\.1\.1$/im);
    assert.match(dsn.data, /^Diagnostic-Code: smtp; ?550 5\.1\.1/im);
    assert.match(dsn.data, /Subject: will bounce/, "the original comes back");
    assert.doesNotMatch(dsn.data, /Final-Recipient: rfc822; ?fine@dest\.test/i);
    assert.ok(world.destination.messages.some((m) => m.recipients.includes("fine@dest.test")));
  });

  it("never bounces to the null sender", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "",
      ["permfail@dest.test"],
      "Subject: a bounce that fails\r\n\r\nx\r\n",
    );
    const id = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    await world.waitForEvent((e) => e.type === "bounced" && e.message_id === id);
    const fromRelay = (await world.events()).filter((e) =>
      e.type === "received" && e.source === "bounce" && e.recipient === ""
    );
    assert.equal(fromRelay.length, 0);
    assert.equal(world.destination.messages.filter((m) => m.data.includes("a bounce that fails")).length, 0);
  });

  it("a recipient still deferred after RELAY_MAX_QUEUE_TIME expires and bounces", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "carol@sender.test",
      ["tempfail@dest.test"],
      "Subject: will expire\r\n\r\nx\r\n",
    );
    const id = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    const deferred = await world.waitForEvent((e) => e.type === "deferred" && e.message_id === id);
    assert.match(deferred.reply, /^451 4\.3\.0/);
    assert.ok(deferred.next_attempt_at);
    const expired = await world.waitForEvent((e) => e.type === "expired" && e.message_id === id, 30_000);
    assert.equal(expired.category, "message-expired");
    await world.destination.waitFor(
      (m) => m.some((r) => r.mailFrom === "" && r.recipients.includes("carol@sender.test")),
      20_000,
    );
    const dsn = world.destination.messages.find((m) =>
      m.mailFrom === "" && m.recipients.includes("carol@sender.test")
    )!;
    assert.match(dsn.data, /^Status: 5\.4\.7$/im);
  });
});
