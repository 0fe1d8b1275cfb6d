// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runRelay } from "../helpers/relay-process.ts";
import { sendMail, SmtpTalk } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

describe("bad input gets a clear error and loses nothing", () => {
  let world: World;
  let acceptedId: string;
  before(async () => {
    world = await startWorld({ env: { RELAY_MAX_MESSAGE_BYTES: "20000", RELAY_MAX_RECIPIENTS: "3" } });
    // Accepted before any of the bad input below; it must arrive whatever follows.
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["keep@dest.test"],
      "Subject: accepted first\r\n\r\nx\r\n",
    );
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

  it("replicated durability without a shared server stops the start with exit 2 rather than being ignored", async () => {
    const result = await runRelay(["serve"], { env: { RELAY_DURABILITY: "replicated" } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^relay: RELAY_DURABILITY: replicated needs RELAY_SHARED_DB_URL/m);
  });

  it("a port already taken stops the start with exit 1, naming the listener", async () => {
    const result = await runRelay(["serve"], {
      env: { RELAY_SMTP_LISTEN: `127.0.0.1:${world.relay.smtpPort}`, RELAY_HTTP_LISTEN: "127.0.0.1:0" },
    });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`cannot listen for SMTP on 127\\.0\\.0\\.1:${world.relay.smtpPort}: EADDRINUSE`),
    );
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

  it("a malformed source route is refused with 501; a well-formed one is accepted and ignored (RFC 5321 4.1.2, C)", async () => {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO client.test");
      for (
        const path of [
          "<@:a@sender.test>",
          "<@,@relay.test:a@sender.test>",
          "<@relay.test,:a@sender.test>",
          "<@relay.test a@sender.test>",
          "<@relay.test>",
        ]
      ) {
        assert.match(await talk.command(`MAIL FROM:${path}`), /^501 5\.1\.7 .*source route/, path);
      }
      assert.match(await talk.command("MAIL FROM:<@relay.test:a@sender.test>"), /^250 /);
      for (
        const path of [
          "<@:x@dest.test>",
          "<@,@relay.test:x@dest.test>",
          "<@relay.test,:x@dest.test>",
          "<@relay.test x@dest.test>",
          "<@relay.test>",
        ]
      ) {
        assert.match(await talk.command(`RCPT TO:${path}`), /^501 5\.1\.3 .*source route/, path);
      }
      assert.match(await talk.command("RCPT TO:<@one.relay.test,@two.relay.test:routed@dest.test>"), /^250 /);
      assert.match(await talk.command("DATA"), /^354 /);
      assert.match(await talk.command("Subject: source route\r\n\r\nx\r\n."), /^250 /);
    } finally {
      talk.close();
    }
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("source route")));
    const got = world.destination.messages.find((r) => r.data.includes("source route"))!;
    assert.deepEqual([got.mailFrom, got.recipients], ["a@sender.test", ["routed@dest.test"]], "the route is dropped");
  });

  it("a non-ASCII address without SMTPUTF8 is refused with 553 5.6.7 (RFC 6531 3.5)", async () => {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO client.test");
      assert.match(await talk.command("MAIL FROM:<josé@sender.test>"), /^553 5\.6\.7 /);
      assert.match(await talk.command("MAIL FROM:<a@sender.test>"), /^250 /);
      assert.match(await talk.command("RCPT TO:<zoë@dest.test>"), /^553 5\.6\.7 /);
      assert.match(await talk.command("RCPT TO:<ok@dest.test>"), /^250 /);
      assert.match(await talk.command("RCPT TO:<Postmaster>"), /^250 /, "postmaster without a domain (RFC 5321 4.5.1)");
      assert.match(await talk.command("RCPT TO:<>"), /^501 5\.1\.3 /, "<> only in MAIL FROM");
    } finally {
      talk.close();
    }
  });

  it("an address literal of this node or its networks is refused with 550 5.7.1; one of no host with 553", async () => {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO client.test");
      assert.match(
        await talk.command("MAIL FROM:<bounce@[127.0.0.1]>"),
        /^550 5\.7\.1 sender <bounce@\[127\.0\.0\.1\]> refused: /,
      );
      assert.match(await talk.command("MAIL FROM:<bounce@[224.0.0.1]>"), /^553 5\.1\.8 /);
      assert.match(await talk.command("MAIL FROM:<a@sender.test>"), /^250 /);
      for (
        const literal of [
          "[127.0.0.1]",
          "[127.000.0.1]",
          "[0.0.0.0]",
          "[IPv6:::1]",
          "[IPv6:::ffff:127.0.0.1]",
          "[10.1.2.3]",
          "[172.16.0.1]",
          "[192.168.1.1]",
          "[100.64.0.1]",
          "[169.254.169.254]",
          "[IPv6:fe80::1]",
          "[IPv6:fd00::1]",
        ]
      ) {
        assert.match(
          await talk.command(`RCPT TO:<x@${literal}>`),
          /^550 5\.7\.1 recipient <x@\[.*\]> refused: .*RELAY_ROUTES/,
          literal,
        );
      }
      for (const literal of ["[224.0.0.1]", "[255.255.255.255]", "[240.0.0.1]", "[IPv6:ff02::1]"]) {
        assert.match(await talk.command(`RCPT TO:<x@${literal}>`), /^553 5\.1\.2 /, literal);
      }
      assert.match(await talk.command("RCPT TO:<x@[IPv6:fe80::1%eth0]>"), /^501 5\.1\.3 /);
      assert.match(await talk.command("RCPT TO:<x@[x-tag:anything]>"), /^501 5\.1\.3 .*not supported/);
      assert.match(await talk.command("RCPT TO:<x@127.0.0.1>"), /^501 5\.1\.3 .*address literal/);
      assert.match(await talk.command("RCPT TO:<ok@dest.test>"), /^250 /, "the session goes on");
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
    const badToken = await fetch(world.relay.url("/v1/events"), {
      headers: { authorization: "Bearer wrong-token-value" },
    });
    assert.equal(badToken.status, 401);
    const invalid = await world.api("POST", "/v1/messages", {
      mail_from: "nope",
      rcpt_to: ["ok@dest.test", "bad@@x"],
      raw: "",
    });
    assert.equal(invalid.status, 422);
    const fields = invalid.json.errors.map((e: any) => e.field).sort();
    assert.deepEqual(fields, ["mail_from", "raw", "rcpt_to.1"]);
    const injected = await world.api("POST", "/v1/messages", {
      from: "a@sender.test",
      to: ["x@dest.test"],
      subject: "hi\r\nBcc: evil@x.test",
      text: "x",
    });
    assert.equal(injected.status, 422);
    assert.equal(injected.json.errors[0].field, "subject");
    const notJson = await fetch(world.relay.url("/v1/messages"), {
      method: "POST",
      headers: { authorization: `Bearer ${world.relay.adminToken}` },
      body: "{not json",
    });
    assert.equal(notJson.status, 400);
    const tooBig = await world.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["x@dest.test"],
      raw: `${"y".repeat(70)}\n`.repeat(430),
    });
    assert.equal(tooBig.status, 413);
  });

  it("HTTP: an envelope address at a literal of this node or its networks is 422 naming the field", async () => {
    const raw = await world.api("POST", "/v1/messages", {
      mail_from: "b@[10.0.0.1]",
      rcpt_to: ["ok@dest.test", "x@[127.0.0.1]"],
      raw: "Subject: no\n\nx\n",
    });
    assert.equal(raw.status, 422);
    assert.deepEqual(raw.json.errors.map((e: any) => e.field), ["mail_from", "rcpt_to.1"]);
    assert.match(raw.json.errors[1].message, /loopback/);
    const structured = await world.api("POST", "/v1/messages", {
      from: "a@sender.test",
      to: ["ok@dest.test"],
      bcc: ["x@[IPv6:::1]"],
      text: "x",
    });
    assert.equal(structured.status, 422);
    assert.deepEqual(structured.json.errors.map((e: any) => e.field), ["bcc.0"]);
  });

  it("everything accepted before the bad input is delivered", async () => {
    await world.waitForEvent((e) => e.type === "delivered" && e.message_id === acceptedId);
    assert.ok(world.destination.messages.some((m) => m.data.includes("accepted first")));
  });
});
