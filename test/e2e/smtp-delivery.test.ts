import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sendMail } from "../helpers/smtp-talk.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

describe("SMTP in, delivered to the MX found through DNS", () => {
  let world: World;
  before(async () => {
    world = await startWorld({
      zone: { ...defaultZone(), "xn--bcher-kva.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] } },
    });
  });
  after(async () => {
    await world?.close();
  });

  it("answers 250 only with a queue id and delivers the message with its headers intact", async () => {
    const message =
      "From: a@sender.test\r\nTo: ok@dest.test\r\nSubject: hello over smtp\r\nX-Custom: kept\r\n\r\nline one\r\n.leading dot\r\n";
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["ok@dest.test", "second@dest.test"],
      message,
    );
    assert.match(replies.at(-2)!, /^250 2\.0\.0 OK queued as [0-9A-Z]{26}$/);
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("hello over smtp")));
    const got = world.destination.messages.find((m) => m.data.includes("hello over smtp"))!;
    assert.equal(got.mailFrom, "a@sender.test");
    assert.deepEqual([...got.recipients].sort(), ["ok@dest.test", "second@dest.test"]);
    assert.match(got.data, /^Received: from client\.test \(\[(::ffff:)?127\.0\.0\.1\]\)\r\n\tby relay\.test/);
    assert.match(got.data, /\r\nSubject: hello over smtp\r\nX-Custom: kept\r\n/);
    assert.match(got.data, /\r\nMessage-ID: <[^>]+@relay\.test>\r\n/, "a Message-ID is added when missing");
    assert.ok(got.data.endsWith("\r\n\r\nline one\r\n.leading dot\r\n"), "body and dot-stuffing survive both hops");
    const id = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    const view = await world.waitForEvent((e) =>
      e.type === "delivered" && e.message_id === id && e.recipient === "second@dest.test"
    );
    assert.equal(view.mx, "mx.dest.test");
    assert.deepEqual(world.dns.queries.some((q) => q.name === "dest.test" && q.type === "MX"), true);
  });

  it("writes one event per state change, readable in order from a cursor", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["events@dest.test"],
      "Subject: events\r\n\r\nx\r\n",
    );
    const id = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    await world.waitForEvent((e) => e.message_id === id && e.type === "delivered");
    const mine = (await world.events()).filter((e) => e.message_id === id);
    assert.deepEqual(mine.map((e) => e.type), ["received", "delivered"]);
    const first = await world.api("GET", `/v1/events?after=${mine[0].id}&limit=1`);
    assert.equal(first.json.events.length, 1);
    assert.ok(Number(first.json.events[0].id) > Number(mine[0].id));
    assert.equal(first.json.next, first.json.events[0].cursor);
  });

  it("delivers to an internationalized domain through the MX of its A-labels (RFC 5890)", async () => {
    const sent = await world.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["leser@bücher.test"],
      raw: "From: a@sender.test\r\nTo: leser@bücher.test\r\nSubject: idn\r\n\r\nhallo\r\n",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const delivered = await world.waitForEvent((e) => e.message_id === sent.json.id && e.type !== "received");
    assert.equal(delivered.type, "delivered", JSON.stringify(delivered));
    const got = world.destination.messages.find((m) => m.data.includes("Subject: idn"))!;
    assert.deepEqual(got.recipients, ["leser@bücher.test"], "the address goes as it was given, with SMTPUTF8");
    assert.ok(world.dns.queries.some((q) => q.name === "xn--bcher-kva.test" && q.type === "MX"));
  });
});
