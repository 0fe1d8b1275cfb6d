import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

describe("temporary failures are retried on RELAY_RETRY_SCHEDULE", () => {
  let world: World;
  before(async () => {
    world = await startWorld({ env: { RELAY_RETRY_SCHEDULE: "1s,1s" } });
  });
  after(async () => {
    await world?.close();
  });

  it("greylisting: 450 first, delivered on the retry", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["greylist@dest.test"],
      "Subject: greylisted\r\n\r\nx\r\n",
    );
    const id = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    const deferred = await world.waitForEvent((e) => e.type === "deferred" && e.message_id === id);
    assert.match(deferred.reply, /^450/);
    assert.equal(deferred.attempt, 1);
    const delivered = await world.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    assert.equal(delivered.attempt, 2);
    assert.equal(world.destination.messages.filter((m) => m.data.includes("greylisted")).length, 1);
  });

  it("a disconnect during DATA is retried, not lost", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["disconnect@dest.test"],
      "Subject: dropped\r\n\r\nx\r\n",
    );
    const id = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    const deferred = await world.waitForEvent((e) => e.type === "deferred" && e.message_id === id);
    assert.equal(deferred.category, "bad-connection");
    const view = await world.api("GET", `/v1/messages/${id}`);
    assert.ok(["queued", "deferred"].includes(view.json.recipients[0].state));
  });
});
