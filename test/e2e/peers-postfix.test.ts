import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Postfix, postfixMissing, startPostfix } from "../helpers/postfix.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

/**
 * A real Postfix (Debian) as a null client whose relayhost is the relay:
 * STARTTLS required (smtp_tls_security_level = encrypt) and SASL AUTH, from
 * outside RELAY_RELAY_NETWORKS (a range without loopback), so the relay only
 * relays because Postfix authenticated. Two private instances (see
 * test/helpers/postfix.ts): one with alice's password, one with a wrong one.
 *
 * Each instance is started by the first test that needs it, not in before():
 * `postfix start` takes a few seconds (it runs `postfix check` first), and
 * Bun's node:test ignores a timeout given to a hook, leaving it Bun's default
 * of 5 s when the file is run without --timeout; a test's own timeout is honoured.
 */
describe("Postfix (Debian) null client with the relay as relayhost: STARTTLS + SASL", () => {
  const password = "correct horse battery";
  const options = { skip: postfixMissing, timeout: 120_000 }; // the timeout is a safety net, not a threshold
  let world: World;
  let good: Promise<Postfix> | undefined;
  let bad: Promise<Postfix> | undefined;
  const goodPostfix =
    () => (good ??= startPostfix({ relayPort: world.relay.smtpPort, saslUser: "alice", saslPassword: password }));
  const badPostfix = () => (bad ??= startPostfix({
    relayPort: world.relay.smtpPort,
    saslUser: "alice",
    saslPassword: "not the password",
  }));
  before(async () => {
    if (postfixMissing) return; // every test below is skipped, with the reason
    world = await startWorld({ env: { RELAY_RELAY_NETWORKS: "10.0.0.0/8" } });
    const added = await runRelay(["users", "add", "alice", "--domains", "sender.test"], {
      dataDir: world.relay.dataDir,
      input: `${password}\n`,
    });
    assert.equal(added.code, 0, added.stderr);
    // RELAY_SENDER_POLICY=verified (the default): alice sends From a verified sending domain.
    await world.verifySendingDomain("sender.test");
  });
  after(async () => {
    // Stop the instances that started (one that failed to start already cleaned up after itself).
    await Promise.allSettled([good, bad].map(async (instance) => (await instance)?.stop()));
    await world?.close();
  });

  const message = (subject: string, to: string) =>
    [
      "From: Alice <alice@sender.test>",
      `To: ${to}`,
      `Subject: ${subject}`,
      "",
      "Hello through Postfix.",
      ".a line starting with a dot",
      "",
    ].join("\n");
  const arrived = (subject: string) =>
    world.destination.messages.find((r) => r.data.includes(`\r\nSubject: ${subject}\r\n`));
  const sentLine = (to: string) =>
    new RegExp(
      `to=<${
        to.replace(/\./g, "\\.")
      }>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${world.relay.smtpPort}, .*status=sent \\(250 2\\.0\\.0 OK queued as ([0-9A-Z]+)\\)`,
    );

  it(
    "sendmail -> Postfix -> relay (TLS, AUTH) -> destination; Postfix logs status=sent with the relay's queue id",
    options,
    async () => {
      const postfix = await goodPostfix();
      const injected = await postfix.sendmail(
        "alice@sender.test",
        ["friend@dest.test"],
        message("via postfix sendmail", "friend@dest.test"),
      );
      assert.equal(injected.code, 0, `sendmail failed:\n${injected.stdout}\n${injected.stderr}`);

      const sent = await postfix.waitForLog(sentLine("friend@dest.test"));
      const relayId = sent[1]!;
      const log = postfix.log();
      assert.match(
        log,
        new RegExp(`TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${world.relay.smtpPort}: TLS`),
      );
      assert.doesNotMatch(log, /SASL authentication failed/);

      await world.destination.waitFor(() => arrived("via postfix sendmail") !== undefined);
      const got = arrived("via postfix sendmail")!;
      assert.equal(got.mailFrom, "alice@sender.test");
      assert.deepEqual(got.recipients, ["friend@dest.test"]);
      assert.match(got.data, /\r\n\.a line starting with a dot\r\n/, "dot-stuffing undone on every hop");
      // The relay's trace header first, with TLS and AUTH (RFC 3848), then Postfix's own.
      const [first, second] = got.data.match(/^Received:.*\r\n(?:[ \t].*\r\n)*/gm) ?? [];
      assert.match(first ?? "", /^Received: from postfix\.test \(/, got.data);
      assert.match(first ?? "", /by relay\.test/);
      assert.match(first ?? "", /with ESMTPSA;/);
      assert.match(second ?? "", /by postfix\.test \(Postfix, from userid /, got.data);
      assert.match(got.data, /\r\nMessage-Id: <[^>]+@postfix\.test>\r\n/i, "Postfix's cleanup added a Message-Id");

      const delivered = await world.waitForEvent((e) => e.type === "delivered" && e.message_id === relayId);
      assert.equal(delivered.recipient, "friend@dest.test");
    },
  );

  it("SMTP into Postfix's own smtpd (loopback port) is relayed the same way", options, async () => {
    const postfix = await goodPostfix();
    const replies = await sendMail(
      postfix.smtpPort,
      "alice@sender.test",
      ["other@dest.test"],
      message("via postfix smtpd", "other@dest.test"),
    );
    assert.match(replies[0]!, /^220 postfix\.test ESMTP/);
    assert.match(replies.at(-2)!, /^250 2\.0\.0 Ok: queued as /, replies.join("\n"));
    await postfix.waitForLog(sentLine("other@dest.test"));
    await world.destination.waitFor(() => arrived("via postfix smtpd") !== undefined);
    const got = arrived("via postfix smtpd")!;
    assert.deepEqual(got.recipients, ["other@dest.test"]);
    // The relay's DKIM-Signature (sender.test is a verified sending domain), then its trace header first.
    assert.match(
      got.data,
      /^DKIM-Signature: [^]*?\r\nReceived: from postfix\.test \([^\r]*\r\n\tby relay\.test \(relay\) with ESMTPSA;/,
    );
  });

  it("a wrong SASL password: the relay answers 535, Postfix defers, nothing arrives", options, async () => {
    const [postfix, wrong] = await Promise.all([goodPostfix(), badPostfix()]);
    const injected = await wrong.sendmail(
      "alice@sender.test",
      ["denied@dest.test"],
      message("postfix with a wrong password", "denied@dest.test"),
    );
    assert.equal(injected.code, 0, `sendmail failed:\n${injected.stdout}\n${injected.stderr}`);
    const port = world.relay.smtpPort;
    await wrong.waitForLog(
      new RegExp(
        `to=<denied@dest\\.test>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port}, .*status=deferred \\(SASL authentication failed`,
      ),
    );
    assert.match(wrong.log(), /SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 /);
    assert.doesNotMatch(wrong.log(), /status=sent/);

    // The deferral ended that session, so the relay never took the message. A later message
    // through the good instance arrives: "nothing arrived" is not merely "not yet".
    const marker = await postfix.sendmail(
      "alice@sender.test",
      ["friend@dest.test"],
      message("after the wrong password", "friend@dest.test"),
    );
    assert.equal(marker.code, 0, marker.stderr);
    await world.destination.waitFor(() => arrived("after the wrong password") !== undefined);
    assert.equal(arrived("postfix with a wrong password"), undefined);
    assert.ok(!world.destination.messages.some((r) => r.recipients.includes("denied@dest.test")));
  });
});
