import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { muttMissing, muttSend } from "../helpers/mutt.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { startWorld, type World } from "../helpers/world.ts";

/**
 * Mutt (Debian) in batch mode submitting through the relay with STARTTLS and
 * AUTH, from outside RELAY_RELAY_NETWORKS (a range without loopback), so the
 * relay only accepts the message because Mutt authenticated.
 */
describe("mutt (Debian) as the submission client: STARTTLS + AUTH", () => {
  const options = { skip: muttMissing, timeout: 120_000 }; // the timeout is a safety net, not a threshold
  const password = 'mutt\'s long "secret"';
  let world: World;
  let certPem: string;
  before(async () => {
    if (muttMissing) return; // every test below is skipped, with the reason
    world = await startWorld({ env: { RELAY_RELAY_NETWORKS: "10.0.0.0/8" } });
    const added = await runRelay(["users", "add", "alice", "--domains", "sender.test"], {
      dataDir: world.relay.dataDir,
      input: `${password}\n`,
    });
    assert.equal(added.code, 0, added.stderr);
    // RELAY_SENDER_POLICY=verified (the default): alice sends From a verified sending domain.
    await world.verifySendingDomain("sender.test");
    // The self-signed certificate the relay generated when it started.
    certPem = readFileSync(join(world.relay.dataDir, "tls", "cert.pem"), "utf8");
    assert.match(certPem, /-----BEGIN CERTIFICATE-----/);
  });
  after(async () => {
    await world?.close();
  });

  const send = (subject: string, overrides: { password?: string; certPem?: string } = {}) =>
    muttSend({
      port: world.relay.smtpPort,
      user: "alice",
      password: overrides.password ?? password,
      certPem: "certPem" in overrides ? overrides.certPem : certPem,
      from: "alice@sender.test",
      realname: "Alice Example",
      to: "friend@dest.test",
      subject,
      body: `Hello from mutt.\n.a line starting with a dot\nsubject was: ${subject}\n`,
    });

  it(
    "sends with the relay's certificate trusted via $certificate_file; the message arrives, received with ESMTPSA",
    options,
    async () => {
      const run = await send("submitted by mutt");
      assert.equal(
        run.code,
        0,
        `mutt failed (exit ${run.code}):\n${run.stdout}\n${run.stderr}\n--- muttrc ---\n${run.muttrc}`,
      );
      await world.destination.waitFor((m) => m.some((r) => r.data.includes("submitted by mutt")));
      const got = world.destination.messages.find((r) => r.data.includes("submitted by mutt"))!;
      assert.equal(got.mailFrom, "alice@sender.test", "use_envelope_from: MAIL FROM is the From address");
      assert.deepEqual(got.recipients, ["friend@dest.test"]);
      assert.match(got.data, /\r\nSubject: submitted by mutt\r\n/);
      assert.match(got.data, /\r\nFrom: Alice Example <alice@sender\.test>\r\n/);
      assert.match(got.data, /\r\nTo: friend@dest\.test\r\n/);
      assert.match(got.data, /\r\nMessage-ID: <[^>]+@sender\.test>\r\n/);
      assert.match(got.data, /\r\n\.a line starting with a dot\r\n/, "dot-stuffing undone on both hops");
      // Signed by the relay (sender.test is a verified sending domain): its DKIM-Signature, then its trace header, come first.
      assert.match(got.data, /^DKIM-Signature: .* d=sender\.test;/);
      const received =
        /^Received:.*\r\n(?:[ \t].*\r\n)*/.exec(got.data.replace(/^DKIM-Signature:.*\r\n(?:[ \t].*\r\n)*/, ""))?.[0] ??
          "";
      assert.match(received, /^Received: from /, `the relay's trace header comes first:\n${got.data}`);
      assert.match(received, /by relay\.test/);
      assert.match(received, /with ESMTPSA;/, "the trace header records TLS and AUTH (RFC 3848)");
    },
  );

  it("a wrong password fails the send (non-zero exit) and nothing is relayed", options, async () => {
    const run = await send("mutt with a wrong password", { password: "not the password" });
    assert.notEqual(run.code, 0, `mutt exited 0 with a wrong password:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /SASL authentication failed/);
    // Proof that a later message goes through, so "nothing arrived" is not just "not yet".
    const ok = await send("mutt after the wrong password");
    assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("mutt after the wrong password")));
    assert.ok(!world.destination.messages.some((r) => r.data.includes("mutt with a wrong password")));
  });

  it(
    "without the certificate in $certificate_file mutt cannot prompt in batch mode and refuses to send",
    options,
    async () => {
      const run = await send("mutt with an untrusted certificate", { certPem: undefined });
      assert.notEqual(run.code, 0, `mutt exited 0 with an untrusted certificate:\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stderr, /Untrusted server certificate/);
      const ok = await send("mutt after the untrusted certificate");
      assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
      await world.destination.waitFor((m) => m.some((r) => r.data.includes("mutt after the untrusted certificate")));
      assert.ok(!world.destination.messages.some((r) => r.data.includes("mutt with an untrusted certificate")));
    },
  );
});
