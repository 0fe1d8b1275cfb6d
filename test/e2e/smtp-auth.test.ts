import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PYTHON, pythonMissing, runPeer, swaks, swaksMissing } from "../helpers/peers.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { SmtpTalk } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

/**
 * Submission with STARTTLS + AUTH from outside RELAY_RELAY_NETWORKS (set to a
 * range that excludes loopback), with the self-signed certificate the relay
 * generates under its data directory.
 */
describe("SMTP AUTH over STARTTLS", () => {
  let world: World;
  before(async () => {
    world = await startWorld({ env: { RELAY_RELAY_NETWORKS: "10.0.0.0/8" } });
    const add = (name: string, password: string, domains?: string) =>
      runRelay(["users", "add", name, ...(domains ? ["--domains", domains] : [])], {
        dataDir: world.relay.dataDir,
        input: `${password}\n`,
      });
    assert.equal((await add("alice", "correct horse battery", "sender.test")).code, 0);
    assert.equal((await add("bob", "another long secret")).code, 0);
    // RELAY_SENDER_POLICY=verified (the default): authenticated users send From a verified sending domain.
    await world.verifySendingDomain("sender.test");
  });
  after(async () => {
    await world?.close();
  });

  it("offers AUTH only after STARTTLS and refuses it in plaintext", async () => {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      const ehlo = await talk.command("EHLO client.test");
      assert.match(ehlo, /STARTTLS/);
      assert.doesNotMatch(ehlo, /AUTH/);
      assert.match(await talk.command("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ=="), /^538 5\.7\.11 /);
    } finally {
      talk.close();
    }
  });

  it("swaks: STARTTLS + AUTH PLAIN relays to any domain and the message arrives", { skip: swaksMissing }, async () => {
    const run = await swaks(world.relay.smtpPort, [
      "--tls",
      "--auth",
      "PLAIN",
      "--auth-user",
      "alice",
      "--auth-password",
      "correct horse battery",
      "--from",
      "alice@sender.test",
      "--to",
      "friend@dest.test",
      "--header",
      "Subject: authenticated via swaks",
    ]);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /^<~ +235 2\.7\.0 /m);
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("authenticated via swaks")));
    const got = world.destination.messages.find((r) => r.data.includes("authenticated via swaks"))!;
    assert.match(got.data, /with ESMTPSA;/, "the trace header records TLS and AUTH (RFC 3848)");
  });

  it("without AUTH, a client outside the relay networks cannot relay", async () => {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO client.test");
      await talk.command("MAIL FROM:<alice@sender.test>");
      assert.match(await talk.command("RCPT TO:<friend@dest.test>"), /^554 5\.7\.1 /);
    } finally {
      talk.close();
    }
  });

  it("a wrong password is 535 5.7.8; a user may only use its granted sender domains (553 5.7.1)", {
    skip: swaksMissing,
  }, async () => {
    const wrong = await swaks(world.relay.smtpPort, [
      "--tls",
      "--auth",
      "LOGIN",
      "--auth-user",
      "alice",
      "--auth-password",
      "not the password",
      "--from",
      "alice@sender.test",
      "--to",
      "friend@dest.test",
    ]);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stdout, /^<~\* +535 5\.7\.8 /m);
    const foreign = await swaks(world.relay.smtpPort, [
      "--tls",
      "--auth",
      "LOGIN",
      "--auth-user",
      "alice",
      "--auth-password",
      "correct horse battery",
      "--from",
      "alice@elsewhere.test",
      "--to",
      "friend@dest.test",
    ]);
    assert.notEqual(foreign.code, 0);
    assert.match(foreign.stdout, /^<~\* +553 5\.7\.1 /m);
  });

  it("Python smtplib: starttls + login as a user without domain limits", { skip: pythonMissing }, async () => {
    const script = `
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.starttls(context=ctx)
s.login("bob", "another long secret")
s.sendmail("bob@any.test", ["friend@dest.test"], b"From: bob@sender.test\\r\\nSubject: authenticated via smtplib\\r\\n\\r\\nhello\\r\\n")
s.quit()
`;
    const run = await runPeer(PYTHON, ["-c", script, String(world.relay.smtpPort)]);
    assert.equal(run.code, 0, run.stderr);
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("authenticated via smtplib")));
  });
});
