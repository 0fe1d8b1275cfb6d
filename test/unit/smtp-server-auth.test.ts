import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import { type Reply, reply } from "../../src/core/reply.ts";
import { createSecureContext, type SecureContext } from "../../src/platform/net.ts";
import { type SmtpServerHandle, type SmtpServerHooks, startSmtpServer } from "../../src/smtp/server/index.ts";
import { INBOUND_TLS } from "../../src/tls/policy.ts";
import { selfSignedIdentity } from "../helpers/pki.ts";
import { failOnSessionError } from "../helpers/smtp-server.ts";
import { Wire } from "../helpers/wire.ts";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const PASSWORD = "s3cret-Pa55word";

describe("SMTP AUTH (RFC 4954)", () => {
  let context: SecureContext;
  let implicit: SmtpServerHandle;
  let starttls: SmtpServerHandle;
  const calls: { mechanism: string; username: string; password: string }[] = [];
  const users: (string | undefined)[] = [];
  let refusal: Reply | "throw" | undefined;

  const hooks: SmtpServerHooks = {
    async onAuth(_s, credentials) {
      calls.push({ ...credentials });
      if (refusal === "throw") throw new Error(`db down for ${credentials.password}`);
      if (refusal) return refusal;
      return credentials.username === "alice" && credentials.password === PASSWORD
        ? undefined
        : reply(535, "5.7.8", "Authentication credentials invalid");
    },
    onRcptTo: async () => undefined,
    onData: async (s) => (users.push(s.user), reply(250, "2.0.0", "Queued")),
  };

  before(async () => {
    context = createSecureContext({ ...selfSignedIdentity(), ...INBOUND_TLS });
    const options = {
      hostname: "mx.test",
      maxMessageBytes: 10_000,
      maxRecipients: 5,
      tls: () => context,
      onError: failOnSessionError,
    };
    implicit = await startSmtpServer({ host: "127.0.0.1", port: 0 }, { ...options, implicitTls: true }, hooks);
    starttls = await startSmtpServer({ host: "127.0.0.1", port: 0 }, options, hooks);
  });

  after(async () => {
    await Promise.all([implicit.closeAll(), starttls.closeAll()]);
  });

  /** A greeted session on the implicit-TLS listener. */
  async function secure(): Promise<Wire> {
    calls.length = 0;
    refusal = undefined;
    const socket = tls.connect({
      host: "127.0.0.1",
      port: implicit.port,
      rejectUnauthorized: false,
      servername: "localhost",
    });
    const w = new Wire(socket);
    assert.equal(await w.reply(), "220 mx.test ESMTP");
    const ehlo = await w.cmd("EHLO client.test");
    assert.ok(ehlo.split("\r\n").some((l) => l.slice(4) === "AUTH PLAIN LOGIN"), "AUTH offered on TLS");
    return w;
  }

  it("refuses AUTH without TLS (538 5.7.11) and does not offer it", async () => {
    calls.length = 0;
    const socket = net.connect({ host: "127.0.0.1", port: starttls.port });
    const w = new Wire(socket);
    await w.reply();
    const ehlo = await w.cmd("EHLO client.test");
    assert.ok(!ehlo.includes("AUTH"), "no AUTH in plaintext EHLO");
    assert.equal(
      await w.cmd(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`),
      "538 5.7.11 Encryption required for requested authentication mechanism",
    );
    assert.equal(await w.cmd("AUTH LOGIN"), "538 5.7.11 Encryption required for requested authentication mechanism");
    assert.equal(calls.length, 0, "the password was never checked in the clear");
    // After STARTTLS it is offered and works.
    assert.match(await w.cmd("STARTTLS"), /^220 /);
    socket.removeAllListeners("data");
    const upgraded = tls.connect({ socket, rejectUnauthorized: false, servername: "localhost" });
    const s = new Wire(upgraded);
    const ehlo2 = await s.cmd("EHLO client.test");
    assert.ok(ehlo2.split("\r\n").some((l) => l.slice(4) === "AUTH PLAIN LOGIN"));
    assert.equal(await s.cmd(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`), "235 2.7.0 Authentication successful");
    upgraded.destroy();
  });

  it("accepts PLAIN with an initial response and sets session.user", async () => {
    const w = await secure();
    assert.equal(await w.cmd(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`), "235 2.7.0 Authentication successful");
    assert.deepEqual(calls, [{ mechanism: "PLAIN", username: "alice", password: PASSWORD }]);
    assert.equal(await w.cmd(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`), "503 5.5.1 Already authenticated");
    await w.cmd("MAIL FROM:<alice@x.test> AUTH=<>");
    await w.cmd("RCPT TO:<b@y.test>");
    await w.cmd("DATA");
    assert.equal(await w.cmd("hi\r\n."), "250 2.0.0 Queued");
    assert.equal(users.at(-1), "alice");
  });

  it("runs PLAIN through a 334 challenge, with the same authzid allowed", async () => {
    const w = await secure();
    w.socket.write("AUTH plain\r\n");
    assert.equal(await w.raw(), "334 \r\n");
    assert.equal(await w.cmd(b64(`alice\0alice\0${PASSWORD}`)), "235 2.7.0 Authentication successful");
  });

  it("runs LOGIN, with and without an initial username", async () => {
    const w = await secure();
    assert.equal(await w.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6");
    assert.equal(await w.cmd(b64("alice")), "334 UGFzc3dvcmQ6");
    assert.equal(await w.cmd(b64(PASSWORD)), "235 2.7.0 Authentication successful");
    assert.deepEqual(calls, [{ mechanism: "LOGIN", username: "alice", password: PASSWORD }]);
    const v = await secure();
    assert.equal(await v.cmd(`AUTH LOGIN ${b64("alice")}`), "334 UGFzc3dvcmQ6");
    assert.equal(await v.cmd(b64("wrong")), "535 5.7.8 Authentication credentials invalid");
  });

  it("sends the hook's refusal and leaves the session unauthenticated", async () => {
    const w = await secure();
    assert.equal(await w.cmd(`AUTH PLAIN ${b64("\0alice\0wrong")}`), "535 5.7.8 Authentication credentials invalid");
    refusal = reply(454, "4.7.0", "Too many failures, try later");
    assert.equal(await w.cmd(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`), "454 4.7.0 Too many failures, try later");
    refusal = "throw";
    const thrown = await w.cmd(`AUTH PLAIN ${b64("\0alice\0x")}`);
    assert.equal(thrown, "454 4.7.0 Temporary authentication failure");
    refusal = reply(421, "4.7.0", "Go away");
    assert.equal(await w.cmd(`AUTH PLAIN ${b64("\0alice\0x")}`), "421 4.7.0 Go away");
    assert.equal(await w.reply(), "", "421 closes the session");
  });

  it("answers cancel, bad base64, bad sequence and foreign authzid", async () => {
    const w = await secure();
    assert.equal(await w.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6");
    assert.equal(await w.cmd("*"), "501 5.0.0 Authentication cancelled");
    assert.equal(await w.cmd("AUTH PLAIN"), "334");
    assert.equal(await w.cmd("not*base64"), "501 5.5.2 Invalid base64 in authentication response");
    assert.equal(await w.cmd("AUTH PLAIN %%%"), "501 5.5.2 Invalid base64 in authentication response");
    assert.equal(await w.cmd("AUTH CRAM-MD5"), "504 5.5.4 Unrecognized authentication type");
    assert.equal(
      await w.cmd(`AUTH PLAIN ${b64(`bob\0alice\0${PASSWORD}`)}`),
      "535 5.7.8 Authorization identity not permitted",
    );
    assert.equal(calls.length, 0, "no hook call for malformed or foreign-identity exchanges");
    assert.equal(await w.cmd("MAIL FROM:<a@x.test>"), "250 2.1.0 Sender OK");
    assert.equal(
      await w.cmd(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}`)}`),
      "503 5.5.1 AUTH not permitted during a mail transaction",
    );
  });

  it("takes SASL lines up to 12288 octets and refuses longer ones with 500 5.5.6", async () => {
    const w = await secure();
    // An AUTH line far over the 512-octet command limit is still read and checked by the hook.
    const password = "p".repeat(9197);
    const line = `AUTH PLAIN ${b64(`\0alice\0${password}`)}`;
    assert.equal(line.length + 2, 12285);
    assert.equal(await w.cmd(line), "535 5.7.8 Authentication credentials invalid");
    assert.equal(calls[0]?.password, password);
    // 12288 octets with CRLF is read as a response (and is not base64); one more is too long.
    assert.equal(await w.cmd("AUTH PLAIN"), "334");
    assert.equal(await w.cmd("A".repeat(12286)), "501 5.5.2 Invalid base64 in authentication response");
    assert.equal(await w.cmd("AUTH PLAIN"), "334");
    assert.equal(await w.cmd("A".repeat(12287)), "500 5.5.6 Authentication Exchange line is too long");
    assert.equal(await w.cmd("NOOP"), "250 2.0.0 OK", "the exchange is over; commands again");
  });

  it("never writes the AUTH line or a SASL response to the console", async () => {
    const seen: string[] = [];
    const originals = {
      log: console.log,
      info: console.info,
      warn: console.warn,
      error: console.error,
      debug: console.debug,
    };
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    const capture = (...args: unknown[]) => void seen.push(args.map(String).join(" "));
    Object.assign(console, { log: capture, info: capture, warn: capture, error: capture, debug: capture });
    process.stdout.write = ((chunk: unknown) => (capture(chunk), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown) => (capture(chunk), true)) as typeof process.stderr.write;
    try {
      const w = await secure();
      assert.equal(await w.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6");
      await w.cmd(b64("alice"));
      assert.equal(await w.cmd(b64(PASSWORD)), "235 2.7.0 Authentication successful");
      const v = await secure();
      await v.cmd(`AUTH PLAIN ${b64(`\0alice\0${PASSWORD}x`)}`);
      await v.cmd("AUTH PLAIN");
      await v.cmd(`${b64(`\0alice\0${PASSWORD}`)}!`);
    } finally {
      Object.assign(console, originals);
      process.stdout.write = out;
      process.stderr.write = err;
    }
    const all = seen.join("\n");
    for (const secret of [PASSWORD, b64(PASSWORD), b64(`\0alice\0${PASSWORD}`)]) assert.ok(!all.includes(secret));
  });
});
