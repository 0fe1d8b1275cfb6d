import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { dkimSigned, message, rsaKey } from "../helpers/mail-auth.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

/**
 * Mail from outside the relay networks (loopback is outside 10.0.0.0/8 here)
 * may only go to the bounce domain; the relay checks it and says so in an
 * Authentication-Results field. bounces.relay.test is routed to a
 * destination fixture so the stamped message can be read.
 */
describe("inbound authentication of mail from outside", () => {
  let world: World;
  let inbox: Destination;
  const key = rsaKey();
  before(async () => {
    inbox = await startDestination();
    world = await startWorld({
      env: {
        RELAY_BOUNCE_DOMAIN: "bounces.relay.test",
        RELAY_RELAY_NETWORKS: "10.0.0.0/8",
        RELAY_ROUTES: `bounces.relay.test=127.0.0.1:${inbox.port}`,
      },
      zone: {
        "sender.test": { TXT: ["v=spf1 ip4:127.0.0.1 -all"] },
        "_dmarc.sender.test": { TXT: ["v=DMARC1; p=reject"] },
        "sel._domainkey.sender.test": { TXT: [key.record] },
        "spoof.test": { TXT: ["v=spf1 -all"] },
        "_dmarc.spoof.test": { TXT: ["v=DMARC1; p=reject"] },
      },
    });
  });
  after(async () => {
    await world?.close();
    await inbox?.close();
  });

  it("relays only to the bounce domain", async () => {
    const replies = await sendMail(world.relay.smtpPort, "a@sender.test", ["x@dest.test"], "Subject: no\r\n\r\nx\r\n");
    assert.ok(replies.some((r) => r.startsWith("554 5.7.1")), replies.join("\n"));
  });

  it("a signed message arrives with our Authentication-Results, and forged ones are gone", async () => {
    const forged = "Authentication-Results: relay.test; dmarc=pass (forged by the sender)\r\n";
    const signed = await dkimSigned(message("a@sender.test", "signed inbound"), "sender.test", "sel", key);
    const replies = await sendMail(
      world.relay.smtpPort,
      "bounce@sender.test",
      ["x@bounces.relay.test"],
      forged + signed,
    );
    assert.match(replies.at(-2)!, /^250 /, replies.join("\n"));
    await inbox.waitFor((m) => m.some((r) => r.data.includes("signed inbound")));
    const got = inbox.messages.find((r) => r.data.includes("signed inbound"))!.data;
    assert.doesNotMatch(got, /forged/);
    const header = /^Authentication-Results: relay\.test;(?:\r\n[ \t].*)+/m.exec(got)?.[0] ?? "";
    assert.match(header, /\bspf=pass .*smtp\.mailfrom=bounce@sender\.test/);
    assert.match(header, /\bdkim=pass header\.d=sender\.test header\.s=sel/);
    assert.match(header, /\bdmarc=pass \(p=REJECT dis=NONE\) header\.from=sender\.test/);
    assert.match(header, /\barc=none smtp\.remote-ip=127\.0\.0\.1/);
    assert.equal((got.match(/^Authentication-Results:/gm) ?? []).length, 1);
  });

  it("a spoofed sender is accepted for the bounce domain and marked dmarc=fail", async () => {
    await sendMail(
      world.relay.smtpPort,
      "x@spoof.test",
      ["x@bounces.relay.test"],
      message("ceo@spoof.test", "spoofed inbound"),
    );
    await inbox.waitFor((m) => m.some((r) => r.data.includes("spoofed inbound")));
    const got = inbox.messages.find((r) => r.data.includes("spoofed inbound"))!.data;
    assert.match(got, /\bspf=fail\b/);
    assert.match(got, /\bdkim=none\b/);
    assert.match(got, /\bdmarc=fail \(p=REJECT dis=REJECT\) header\.from=spoof\.test/);
  });

  // Needs the queue store to write Submission.authResults into the `received` event (see the report).
  it("the received event carries the results", async () => {
    const signed = await dkimSigned(message("a@sender.test", "event inbound"), "sender.test", "sel", key);
    const replies = await sendMail(world.relay.smtpPort, "bounce@sender.test", ["x@bounces.relay.test"], signed);
    const id = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    const received = await world.waitForEvent((e) => e.type === "received" && e.message_id === id);
    assert.equal(received.auth?.spf?.result, "pass", JSON.stringify(received));
    assert.deepEqual(received.auth.dkim.map((d: { result: string; domain: string }) => `${d.domain} ${d.result}`), [
      "sender.test pass",
    ]);
    assert.equal(received.auth.dmarc.result, "pass");
    assert.equal(received.auth.arc.result, "none");
  });
});
