// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Aiosmtpd, aiosmtpdMissing, startAiosmtpd } from "../helpers/peers.ts";
import { type RelayProcess, startRelay } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { type RelayApi, relayApi } from "../helpers/world.ts";

describe("Python aiosmtpd (Debian) as the destination", () => {
  let peer: Aiosmtpd | undefined;
  let relay: RelayProcess | undefined;
  let api: RelayApi;
  before(async () => {
    if (aiosmtpdMissing) return; // every test below is skipped, with the reason
    peer = await startAiosmtpd();
    relay = await startRelay({ env: { RELAY_ROUTES: `*=127.0.0.1:${peer.port}`, RELAY_RETRY_SCHEDULE: "1s" } });
    api = relayApi(relay);
  });
  after(async () => {
    try {
      await relay?.cleanup();
    } finally {
      await peer?.close();
    }
  });

  it("receives a message submitted over SMTP, headers and body intact", { skip: aiosmtpdMissing }, async () => {
    const message = "Date: Mon, 02 Feb 2026 10:00:00 +0000\r\n" +
      "From: a@sender.test\r\n" +
      "To: smtp@dest.test\r\n" +
      "Subject: aiosmtpd via smtp\r\n" +
      "Message-ID: <aiosmtpd-smtp@sender.test>\r\n" +
      "X-Custom: kept as is\r\n" +
      "\r\n" +
      "first line\r\n" +
      ".leading dot\r\n";
    const replies = await sendMail(relay!.smtpPort, "a@sender.test", ["smtp@dest.test", "cc@example.org"], message);
    const queued = /^250 2\.0\.0 OK queued as ([0-9A-Z]{26})$/.exec(replies.at(-2)!);
    assert.ok(queued, `no queue id: ${replies.join(" | ")}`);
    const id = queued[1]!;

    // One route for every domain: both recipients go to aiosmtpd, in one transaction or two.
    await peer!.waitFor((m) =>
      m.filter((r) => r.data.includes("aiosmtpd via smtp")).flatMap((r) => r.rcptTos).length >= 2
    );
    const got = peer!.messages.filter((m) => m.data.includes("aiosmtpd via smtp"));
    assert.deepEqual(got.flatMap((m) => m.rcptTos).sort(), ["cc@example.org", "smtp@dest.test"]);
    for (const m of got) {
      assert.equal(m.mailFrom, "a@sender.test");
      assert.equal(m.helo, "relay.test", "the relay says EHLO with RELAY_HOSTNAME");
      assert.match(m.data, /^Received: from client\.test \(\[(::ffff:)?127\.0\.0\.1\]\)\r\n\tby relay\.test/);
      const afterReceived = m.data.replace(/^Received:.*\r\n(?:[ \t].*\r\n)*/, "");
      assert.equal(
        afterReceived,
        message,
        "everything but the Received header arrives unchanged (dot-stuffing undone)",
      );
    }
    for (const recipient of ["smtp@dest.test", "cc@example.org"]) {
      const event = await api.waitForEvent((e) =>
        e.type === "delivered" && e.message_id === id && e.recipient === recipient
      );
      assert.equal(event.reply, "250 2.0.0 Message accepted by aiosmtpd", "the event carries the peer's own reply");
      assert.equal(event.mx, "127.0.0.1", "delivered through the static route");
      assert.equal(event.attempt, 1);
    }
  });

  it("receives a raw message submitted over HTTP (POST /v1/messages)", { skip: aiosmtpdMissing }, async () => {
    const raw = "Date: Mon, 02 Feb 2026 10:00:00 +0000\r\n" +
      "From: Sender <a@sender.test>\r\n" +
      "To: http@dest.test\r\n" +
      "Subject: aiosmtpd via http\r\n" +
      "Message-ID: <aiosmtpd-http@sender.test>\r\n" +
      "X-Custom: from http\r\n" +
      "\r\n" +
      "http body line\r\n" +
      ".dot line\r\n";
    const response = await fetch(relay!.url("/v1/messages"), {
      method: "POST",
      headers: { authorization: `Bearer ${relay!.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ mail_from: "a@sender.test", rcpt_to: ["http@dest.test"], raw }),
    });
    const sent = (await response.json()) as any;
    assert.equal(response.status, 202, JSON.stringify(sent));
    assert.match(sent.id, /^[0-9A-Z]{26}$/);
    assert.deepEqual(sent.recipients, [{ email: "http@dest.test", status: "queued" }]);

    await peer!.waitFor((m) => m.some((r) => r.data.includes("aiosmtpd via http")));
    const got = peer!.messages.filter((m) => m.data.includes("aiosmtpd via http"));
    assert.equal(got.length, 1);
    assert.equal(got[0]!.mailFrom, "a@sender.test");
    assert.deepEqual(got[0]!.rcptTos, ["http@dest.test"]);
    assert.match(got[0]!.data, /^Received: from api\r\n\tby relay\.test \(relay\) with HTTP;\r\n/);
    const afterReceived = got[0]!.data.replace(/^Received:.*\r\n(?:[ \t].*\r\n)*/, "");
    assert.equal(afterReceived, raw, "everything but the Received header arrives unchanged");
    assert.match(
      got[0]!.data,
      /\r\nSubject: aiosmtpd via http\r\nMessage-ID: <aiosmtpd-http@sender\.test>\r\nX-Custom: from http\r\n/,
    );

    const event = await api.waitForEvent((e) => e.type === "delivered" && e.message_id === sent.id);
    assert.equal(event.recipient, "http@dest.test");
    const view = await api.api("GET", `/v1/messages/${sent.id}`);
    assert.equal(view.json.recipients[0].state, "delivered");
    assert.match(view.json.recipients[0].last_reply, /^250 2\.0\.0 Message accepted by aiosmtpd/);
    assert.deepEqual(view.json.events.map((e: any) => e.type), ["received", "delivered"]);
  });
});
