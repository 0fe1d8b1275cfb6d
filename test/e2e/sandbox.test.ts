import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

const outcome = (world: World, recipient: string, type: string) =>
  world.waitForEvent((e) => e.recipient === recipient && e.type === type);

describe("sandbox: simulated outcomes through the real classification, retry, bounce and event code", () => {
  let sandboxed: World;
  let normal: World;
  before(async () => {
    sandboxed = await startWorld({ env: { RELAY_SANDBOX: "true", RELAY_RETRY_SCHEDULE: "1s" } });
    normal = await startWorld({ env: { RELAY_RETRY_SCHEDULE: "1s" } });
  });
  after(async () => {
    await sandboxed?.close();
    await normal?.close();
  });

  it("RELAY_SANDBOX=true: nothing leaves the node, and each local part gets its outcome", async () => {
    const rcpts = [
      "delivered@dest.test",
      "bounce@dest.test",
      "greylist@dest.test",
      "throttle@dest.test",
      "complaint@dest.test",
      "anyone@dest.test",
    ];
    const sent = await sandboxed.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: rcpts,
      raw: "Subject: sandboxed\r\n\r\nx\r\n",
      tags: ["sim"],
    });
    assert.equal(sent.status, 202);
    const delivered = await outcome(sandboxed, "delivered@dest.test", "delivered");
    assert.equal(delivered.mx, "sandbox.relay.test");
    assert.deepEqual(delivered.tags, ["sim"]);
    const bounced = await outcome(sandboxed, "bounce@dest.test", "bounced");
    assert.match(bounced.reply, /^550 5\.1\.1 /);
    assert.equal(bounced.category, "bad-mailbox");
    const greyDeferred = await outcome(sandboxed, "greylist@dest.test", "deferred");
    assert.match(greyDeferred.reply, /^450 /);
    assert.equal(greyDeferred.category, "greylisting");
    const greyDelivered = await outcome(sandboxed, "greylist@dest.test", "delivered");
    assert.equal(greyDelivered.attempt, 2);
    const throttled = await outcome(sandboxed, "throttle@dest.test", "deferred");
    assert.match(throttled.reply, /^421 /);
    await outcome(sandboxed, "complaint@dest.test", "delivered");
    const complaint = await outcome(sandboxed, "complaint@dest.test", "complained");
    assert.equal(complaint.feedback_type, "abuse");
    await outcome(sandboxed, "anyone@dest.test", "delivered");
    // The bounce is a real DSN, itself delivered (to the sandbox, as everything here).
    await sandboxed.waitForEvent((e) =>
      e.type === "received" && e.source === "bounce" && e.recipient === "a@sender.test"
    );
    assert.equal(sandboxed.destination.connections, 0, "no connection left the node");
  });

  it("@simulator.relay.test is simulated in normal mode too, while other domains are delivered for real", async () => {
    await sendMail(
      normal.relay.smtpPort,
      "a@sender.test",
      ["bounce@simulator.relay.test", "real@dest.test"],
      "Subject: mixed\r\n\r\nx\r\n",
    );
    const bounced = await outcome(normal, "bounce@simulator.relay.test", "bounced");
    assert.equal(bounced.mx, "sandbox.relay.test");
    await normal.destination.waitFor((m) => m.some((r) => r.recipients.includes("real@dest.test")));
    assert.ok(!normal.destination.messages.some((m) => m.recipients.some((r) => r.endsWith("@simulator.relay.test"))));
  });
});
