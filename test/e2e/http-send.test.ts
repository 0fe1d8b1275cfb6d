// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startWorld, type World } from "../helpers/world.ts";

describe("HTTP API: send, inspect, cancel", () => {
  let world: World;
  before(async () => {
    world = await startWorld();
  });
  after(async () => {
    await world?.close();
  });

  it("sends a raw message once durable (202) and delivers it", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["raw@dest.test"],
      raw: "From: a@sender.test\nTo: raw@dest.test\nSubject: raw over http\n\nbody line\nbare\rcr\r\n.dot line\n",
      tags: ["welcome"],
      metadata: { user: 42 },
    });
    assert.equal(sent.status, 202);
    assert.match(sent.json.id, /^[0-9A-Z]{26}$/);
    assert.deepEqual(sent.json.recipients, [{ email: "raw@dest.test", status: "queued" }]);
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("raw over http")));
    const message = world.destination.messages.find((m) => m.data.includes("raw over http"))!;
    assert.deepEqual(message.recipients, ["raw@dest.test"]);
    assert.match(
      message.data,
      /\r\nSubject: raw over http\r\n\r\nbody line\r\nbare\r\ncr\r\n\.dot line\r\n$/,
      "bare LF and bare CR become CRLF",
    );
    const delivered = await world.waitForEvent((e) => e.type === "delivered" && e.message_id === sent.json.id);
    assert.equal(delivered.recipient, "raw@dest.test");
    assert.deepEqual(delivered.tags, ["welcome"], "tags come back in every event");
    assert.deepEqual(delivered.metadata, { user: 42 }, "metadata comes back in every event");
    const view = await world.api("GET", `/v1/messages/${sent.json.id}`);
    assert.equal(view.status, 200);
    assert.equal(view.json.mail_from, "a@sender.test");
    assert.deepEqual(view.json.tags, ["welcome"]);
    assert.deepEqual(view.json.metadata, { user: 42 });
    assert.equal(view.json.recipients[0].state, "delivered");
    assert.equal(view.json.recipients[0].attempts, 1);
    assert.match(view.json.recipients[0].last_reply, /^250 /);
    assert.deepEqual(view.json.events.map((e: any) => e.type), ["received", "delivered"]);
  });

  it("builds a structured message with MIME and hides Bcc", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      from: "Sender <a@sender.test>",
      to: ["to@dest.test"],
      bcc: ["hidden@dest.test"],
      subject: "structured über",
      text: "plain part",
      html: "<p>html part</p>",
      attachments: [{
        filename: "a.txt",
        content_type: "text/plain",
        content: Buffer.from("attached").toString("base64"),
      }],
    });
    assert.equal(sent.status, 202);
    await world.destination.waitFor((m) => m.some((r) => r.recipients.includes("hidden@dest.test")));
    const message = world.destination.messages.find((m) => m.recipients.includes("hidden@dest.test"))!;
    assert.deepEqual([...message.recipients].sort(), ["hidden@dest.test", "to@dest.test"]);
    assert.equal(message.mailFrom, "a@sender.test");
    assert.doesNotMatch(message.data, /^Bcc:/im);
    assert.match(message.data, /^Content-Type: multipart\/mixed/im);
    assert.match(message.data, /^Subject: =\?UTF-8\?/im, "non-ASCII subject is encoded");
    assert.ok(message.data.includes(Buffer.from("attached").toString("base64")));
  });

  it("cancels what is still queued", async () => {
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const sent = await world.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["later@dest.test"],
      raw: "Subject: scheduled\r\n\r\nx\r\n",
      send_at: later,
    });
    assert.equal(sent.status, 202);
    const cancelled = await world.api("DELETE", `/v1/messages/${sent.json.id}`);
    assert.deepEqual(cancelled.json, { id: sent.json.id, cancelled: 1 });
    const view = await world.api("GET", `/v1/messages/${sent.json.id}`);
    assert.equal(view.json.recipients[0].state, "cancelled");
    assert.equal((await world.api("GET", "/v1/messages/NOPE")).status, 404);
  });
});
