import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runRelay } from "../helpers/relay-process.ts";
import { SmtpTalk, sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

describe("bad input gets a clear error and loses nothing", () => {
  let world: World;
  let acceptedId: string;
  before(async () => {
    world = await startWorld({ env: { RELAY_MAX_MESSAGE_BYTES: "20000", RELAY_MAX_RECIPIENTS: "3" } });
    // Accepted before any of the bad input below; it must arrive whatever follows.
    const replies = await sendMail(world.relay.smtpPort, "a@sender.test", ["keep@dest.test"], "Subject: accepted first\r\n\r\nx\r\n");
    acceptedId = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
  });
  after(async () => {
    await world?.close();
  });

  it("an invalid variable stops the start with exit 2, naming every bad variable and its form", async () => {
    const result = await runRelay(["serve"], {
      env: { RELAY_SMTP_LISTEN: "nonsense", RELAY_MAX_QUEUE_TIME: "forever", RELAY_RELAY_NETWORKS: "10.0.0.0/33" },
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /RELAY_SMTP_LISTEN: expected a comma list of host:port, got "nonsense"/);
    assert.match(result.stderr, /RELAY_MAX_QUEUE_TIME: expected a duration such as 5d or 12h, got "forever"/);
    assert.match(result.stderr, /RELAY_RELAY_NETWORKS: expected a comma list of CIDRs/);
  });

  it("a port already taken stops the start with exit 1, naming the listener", async () => {
    const result = await runRelay(["serve"], {
      env: { RELAY_SMTP_LISTEN: `127.0.0.1:${world.relay.smtpPort}`, RELAY_HTTP_LISTEN: "127.0.0.1:0" },
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`cannot listen for SMTP on 127\\.0\\.0\\.1:${world.relay.smtpPort}: EADDRINUSE`));
  });

  it("an unknown command is bad usage (exit 2)", async () => {
    const result = await runRelay(["frobnicate"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown command "frobnicate"/);
  });

  it("a malformed address is refused with 501 and the session goes on", async () => {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO client.test");
      assert.match(await talk.command("MAIL FROM:<not an address>"), /^501 5\.1\.7 /);
      assert.match(await talk.command("MAIL FROM:<a@sender.test>"), /^250 /);
      assert.match(await talk.command("RCPT TO:<two@@dest.test>"), /^501 5\.1\.3 /);
      assert.match(await talk.command("RCPT TO:<ok@dest.test>"), /^250 /);
    } finally {
      talk.close();
    }
  });

  it("an oversized message is refused with 552 (declared or sent)", async () => {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      assert.match(await talk.command("EHLO client.test"), /SIZE 20000/);
      assert.match(await talk.command("MAIL FROM:<a@sender.test> SIZE=50000"), /^552 5\.3\.4 /);
      assert.match(await talk.command("MAIL FROM:<a@sender.test>"), /^250 /);
      assert.match(await talk.command("RCPT TO:<big@dest.test>"), /^250 /);
      assert.match(await talk.command("DATA"), /^354 /);
      const line = "x".repeat(998) + "\r\n";
      assert.match(await talk.command(`Subject: too big\r\n\r\n${line.repeat(30)}.`), /^552 5\.3\.4 /);
      assert.match(await talk.command("NOOP"), /^250 /, "the session survives");
    } finally {
      talk.close();
    }
    assert.equal((await world.events()).filter((e) => e.recipient === "big@dest.test").length, 0, "nothing was queued");
  });

  it("more recipients than RELAY_MAX_RECIPIENTS get 452 4.5.3", async () => {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO client.test");
      await talk.command("MAIL FROM:<a@sender.test>");
      for (let i = 0; i < 3; i++) assert.match(await talk.command(`RCPT TO:<r${i}@dest.test>`), /^250 /);
      assert.match(await talk.command("RCPT TO:<r3@dest.test>"), /^452 4\.5\.3 /);
    } finally {
      talk.close();
    }
  });

  it("a relay attempt from outside RELAY_RELAY_NETWORKS is refused with 554 5.7.1", async () => {
    const outsider = await startWorld({ env: { RELAY_RELAY_NETWORKS: "10.0.0.0/8" } });
    try {
      const talk = await SmtpTalk.open(outsider.relay.smtpPort);
      await talk.reply();
      await talk.command("EHLO client.test");
      await talk.command("MAIL FROM:<a@sender.test>");
      assert.match(await talk.command("RCPT TO:<victim@dest.test>"), /^554 5\.7\.1 /);
      assert.match(await talk.command("DATA"), /^503 /, "no valid recipient, no data");
      talk.close();
    } finally {
      await outsider.close();
    }
  });

  it("HTTP: a missing or bad token is 401; an invalid body is 422 naming every bad field", async () => {
    const noToken = await fetch(world.relay.url("/v1/messages"), { method: "POST", body: "{}" });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers.get("content-type"), "application/problem+json");
    const badToken = await fetch(world.relay.url("/v1/events"), { headers: { authorization: "Bearer wrong-token-value" } });
    assert.equal(badToken.status, 401);
    const invalid = await world.api("POST", "/v1/messages", { mail_from: "nope", rcpt_to: ["ok@dest.test", "bad@@x"], raw: "" });
    assert.equal(invalid.status, 422);
    const fields = invalid.json.errors.map((e: any) => e.field).sort();
    assert.deepEqual(fields, ["mail_from", "raw", "rcpt_to.1"]);
    const injected = await world.api("POST", "/v1/messages", { from: "a@sender.test", to: ["x@dest.test"], subject: "hi\r\nBcc: evil@x.test", text: "x" });
    assert.equal(injected.status, 422);
    assert.equal(injected.json.errors[0].field, "subject");
    const notJson = await fetch(world.relay.url("/v1/messages"), {
      method: "POST",
      headers: { authorization: `Bearer ${world.relay.adminToken}` },
      body: "{not json",
    });
    assert.equal(notJson.status, 400);
    const tooBig = await world.api("POST", "/v1/messages", { mail_from: "a@sender.test", rcpt_to: ["x@dest.test"], raw: `${"y".repeat(70)}\n`.repeat(430) });
    assert.equal(tooBig.status, 413);
  });

  it("everything accepted before the bad input is delivered", async () => {
    await world.waitForEvent((e) => e.type === "delivered" && e.message_id === acceptedId);
    assert.ok(world.destination.messages.some((m) => m.data.includes("accepted first")));
  });
});
