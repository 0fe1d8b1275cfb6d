/**
 * Peer misbehaviour the destination fixture does not script: a tiny server per
 * test that answers each command line with whatever the test says.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { SmtpClientError, SmtpClientSession } from "../../src/smtp/client/index.ts";
import { plainServer, scripted as startScripted, type ScriptedPeer } from "../helpers/scripted-peer.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const peers: ScriptedPeer[] = [];
after(() => Promise.all(peers.map((p) => p.close())));

async function scripted(answer: (line: string) => string | null, greeting?: string): Promise<ScriptedPeer> {
  const peer = await startScripted(answer, greeting);
  peers.push(peer);
  return peer;
}

const open = (port: number, extra: object = {}) =>
  SmtpClientSession.open({ host: "127.0.0.1", port, heloName: "relay.test", tls: "opportunistic", ...extra });

async function rejection(promise: Promise<unknown>): Promise<SmtpClientError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof SmtpClientError, `expected SmtpClientError, got ${String(error)}`);
  return error;
}

describe("SmtpClientSession with misbehaving peers", () => {
  test("EHLO refused with 5xx falls back to HELO (RFC 5321 3.2), no extensions", async () => {
    const peer = await scripted((line) => (line.startsWith("EHLO") ? "502 5.5.1 what\r\n" : plainServer(line)));
    const session = await open(peer.port);
    assert.equal(session.extensions.size, 0);
    const result = await session.send({ mailFrom: "a@x.test", recipients: ["b@y.test"] }, bytes("hi\r\n"));
    await session.quit();
    assert.equal(result.data?.code, 250);
    assert.deepEqual(peer.lines.slice(0, 3), ["EHLO relay.test", "HELO relay.test", "MAIL FROM:<a@x.test>"]);
  });

  test("421 at RCPT: later commands get that 421 and the session closes", async () => {
    const peer = await scripted((
      line,
    ) => (line.startsWith("RCPT TO:<b") ? "421 4.7.0 too many connections\r\n" : plainServer(line)));
    const session = await open(peer.port);
    const result = await session.send(
      { mailFrom: "a@x.test", recipients: ["a@y.test", "b@y.test", "c@y.test"] },
      bytes("hi\r\n"),
    );
    assert.deepEqual(result.recipients.map((r) => [r.reply.code, r.reply.command]), [
      [250, "RCPT TO:<a@y.test>"],
      [421, "RCPT TO:<b@y.test>"],
      [421, "RCPT TO:<c@y.test>"],
    ]);
    assert.equal(result.data?.code, 421);
    assert.equal(session.usable, false);
  });

  test("no reply to RCPT: timeout at stage rcpt, with the MAIL reply kept", async () => {
    let silent = false;
    const peer = await scripted((line) => {
      silent ||= line.startsWith("RCPT");
      return silent ? "" : plainServer(line);
    });
    const session = await open(peer.port, { timeouts: { rcpt: 50 } });
    const error = await rejection(session.send({ mailFrom: "a@x.test", recipients: ["b@y.test"] }, bytes("hi\r\n")));
    assert.equal(error.kind, "timeout");
    assert.equal(error.stage, "rcpt");
    assert.equal(error.partial?.mail?.code, 250);
    assert.equal(session.usable, false);
  });

  test("connection dropped at MAIL: kind disconnected, stage mail", async () => {
    const peer = await scripted((line) => (line.startsWith("MAIL") ? null : plainServer(line)));
    const session = await open(peer.port);
    const error = await rejection(session.send({ mailFrom: "a@x.test", recipients: ["b@y.test"] }, bytes("hi\r\n")));
    assert.ok(error.kind === "disconnected" || error.kind === "reset", error.kind);
    assert.equal(error.stage, "mail");
  });

  test("plaintext after the 220 to STARTTLS is refused (RFC 3207 5)", async () => {
    const peer = await scripted((line) =>
      line.startsWith("EHLO")
        ? "250-peer.test\r\n250 STARTTLS\r\n"
        : line === "STARTTLS"
        ? "220 go ahead\r\n250 injected\r\n"
        : plainServer(line)
    );
    const error = await rejection(open(peer.port));
    // A TLS failure: opportunistic TLS starts over in plaintext on a new connection, required TLS defers.
    assert.equal(error.kind, "tls");
    assert.equal(error.stage, "starttls");
    assert.match(error.message, /server sent data after its reply to STARTTLS/);
  });

  test("STARTTLS refused: opportunistic continues in plaintext, required fails", async () => {
    const answer = (line: string) =>
      line.startsWith("EHLO")
        ? "250-peer.test\r\n250 STARTTLS\r\n"
        : line === "STARTTLS"
        ? "454 4.7.0 TLS not available\r\n"
        : plainServer(line);
    const peer = await scripted(answer);
    const session = await open(peer.port);
    assert.equal(session.tls, undefined);
    await session.quit();
    const error = await rejection(open(peer.port, { tls: "required" }));
    assert.equal(error.kind, "tls");
    assert.equal(error.reply?.code, 454);
  });

  test("a reply that is not SMTP, or too long, is a protocol error", async () => {
    const garbage = await scripted(() => "", "HTTP/1.1 400 Bad Request\r\n");
    assert.equal((await rejection(open(garbage.port))).kind, "protocol");
    const flood = await scripted((
      line,
    ) => (line.startsWith("EHLO") ? `250-${"x".repeat(500)}\r\n`.repeat(10) + "250 end\r\n" : ""));
    const error = await rejection(open(flood.port, { maxReplyBytes: 2048 }));
    assert.equal(error.kind, "protocol");
    assert.equal(error.stage, "ehlo");
  });
});
