import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { makePki, type TestPki } from "../helpers/pki.ts";
import { type PostfixDestination, postfixDestinationMissing, startPostfixDestination } from "../helpers/postfix.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

/**
 * A real Postfix (Debian) as the DESTINATION: a private instance (see
 * test/helpers/postfix.ts) that accepts mail for dest.test on a loopback port
 * and delivers it with virtual(8) into a maildir. The relay finds it through
 * DNS (MX of dest.test -> 127.0.0.1, RELAY_MX_PORT = Postfix's port) and
 * delivers over STARTTLS (Postfix offers it with a test certificate).
 *
 * Postfix and the relay are started by the first test that needs them, not in
 * before(): `postfix start` takes a few seconds and Bun's node:test ignores a
 * hook's timeout (see peers-postfix.test.ts); a test's own timeout is honoured.
 */
describe("Postfix (Debian) as the destination MTA", () => {
  const options = { skip: postfixDestinationMissing, timeout: 120_000 }; // the timeout is a safety net, not a threshold
  let pki: TestPki | undefined;
  let postfix: PostfixDestination | undefined;
  let world: World | undefined;
  let setup: Promise<{ postfix: PostfixDestination; world: World }> | undefined;
  const started = () => (setup ??= (async () => {
    pki = makePki();
    postfix = await startPostfixDestination({ domains: ["dest.test"], tls: pki.leaf(["postfix-dest.test"]) });
    world = await startWorld({
      zone: {
        "dest.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
        "mx.dest.test": { A: ["127.0.0.1"] },
      },
      env: { RELAY_MX_PORT: String(postfix.smtpPort), RELAY_COMMAND_TIMEOUT: "30s" },
    });
    return { postfix, world };
  })());
  after(async () => {
    await world?.close();
    await postfix?.stop();
    pki?.cleanup();
  });

  /** The one delivered file that contains `marker`. */
  const delivered = async (p: PostfixDestination, marker: string): Promise<string> => {
    const { found } = await waitUntil(
      () => ({ found: p.messages().filter((m) => m.includes(marker)), maillog: p.log() }),
      ({ found }) => found.length > 0,
      { what: `a message with ${marker} in ${p.maildir}`, every: 50 },
    );
    assert.equal(found.length, 1, "delivered once");
    return found[0]!;
  };

  it(
    "a message submitted over SMTP arrives in Postfix's maildir with its headers intact; Postfix logs status=sent",
    options,
    async () => {
      const { postfix, world } = await started();
      const message = [
        "From: Alice <alice@sender.test>",
        "To: Bob <bob@dest.test>",
        "Subject: to postfix over smtp",
        "Message-ID: <smtp-1.postfix-destination@sender.test>",
        "Date: Mon, 01 Jan 2024 00:00:00 +0000",
        "",
        "Hello Postfix.",
        ".a line starting with a dot",
        "",
      ].join("\r\n");
      const replies = await sendMail(world.relay.smtpPort, "alice@sender.test", ["bob@dest.test"], message);
      const id = /queued as (\S+)/.exec(replies.at(-2) ?? "")?.[1];
      assert.ok(id, replies.join("\n"));

      const event = await world.waitForEvent((e) => e.type === "delivered" && e.message_id === id, 60_000);
      assert.equal(event.recipient, "bob@dest.test");
      assert.match(event.reply, /^250 /);
      assert.match(event.tls?.version ?? "", /^TLSv1\.[23]$/, "STARTTLS with Postfix");

      const file = await delivered(postfix, "<smtp-1.postfix-destination@sender.test>");
      assert.match(file, /^Return-Path: <alice@sender\.test>$/m);
      assert.match(file, /^Delivered-To: bob@dest\.test$/m);
      assert.match(file, /^Subject: to postfix over smtp$/m);
      assert.match(file, /^Message-ID: <smtp-1\.postfix-destination@sender\.test>$/m);
      assert.match(file, /^From: Alice <alice@sender\.test>$/m);
      assert.match(file, /\n\.a line starting with a dot\n/, "dot-stuffing undone on both hops");
      // Postfix's trace header on top (with TLS), then the relay's own.
      const received = file.match(/^Received:.*\n(?:[ \t].*\n)*/gm) ?? [];
      assert.ok(received.length >= 2, file);
      assert.match(received[0]!, /by postfix-dest\.test \(Postfix\) with ESMTPS/, file);
      assert.match(received[1]!, /by relay\.test/, file);

      const log = await postfix.waitForLog(
        /to=<bob@dest\.test>, relay=virtual, .*status=sent \(delivered to maildir\)/,
      );
      assert.ok(log);
      assert.match(postfix.log(), /Anonymous TLS connection established from|TLS connection established from/);
    },
  );

  it("a message submitted over HTTP arrives the same way", options, async () => {
    const { postfix, world } = await started();
    const sent = await world.api("POST", "/v1/messages", {
      from: "alice@sender.test",
      to: ["carol@dest.test"],
      subject: "to postfix over http",
      text: "Hello from the HTTP API.\n",
      headers: { "X-Test-Marker": "http-postfix-destination" },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const event = await world.waitForEvent((e) => e.type === "delivered" && e.message_id === sent.json.id, 60_000);
    assert.equal(event.recipient, "carol@dest.test");

    const file = await delivered(postfix, "X-Test-Marker: http-postfix-destination");
    assert.match(file, /^Delivered-To: carol@dest\.test$/m);
    assert.match(file, /^Subject: to postfix over http$/m);
    assert.match(file, /^Message-ID: <[^>\s]+@[^>\s]+>$/im);
    assert.match(file, /^Received: .*\n(?:[ \t].*\n)*?[ \t]*by relay\.test/m);
    assert.match(file, /Hello from the HTTP API\./);
    await postfix.waitForLog(/to=<carol@dest\.test>, relay=virtual, .*status=sent \(delivered to maildir\)/);
  });

  it("a recipient domain Postfix does not host: 554 relay access denied, the relay bounces it", options, async () => {
    const { world } = await started();
    // other.test has the same MX; Postfix refuses to relay for it (reject_unauth_destination).
    world.dns.setZone({
      "dest.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
      "other.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
      "mx.dest.test": { A: ["127.0.0.1"] },
    });
    const replies = await sendMail(
      world.relay.smtpPort,
      "alice@sender.test",
      ["dave@other.test"],
      "Subject: not hosted\r\n\r\nx\r\n",
    );
    const id = /queued as (\S+)/.exec(replies.at(-2) ?? "")?.[1];
    const bounced = await world.waitForEvent((e) => e.type === "bounced" && e.message_id === id, 60_000);
    assert.match(bounced.reply, /^554 5\.7\.1 /, JSON.stringify(bounced));
  });
});
