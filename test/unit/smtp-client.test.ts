import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  type ClientOptions,
  recipientOutcomes,
  SmtpClientError,
  SmtpClientSession,
} from "../../src/smtp/client/index.ts";
import { type Destination, type DestinationOptions, startDestination } from "../fixtures/smtp-destination.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const MESSAGE = "From: a@sender.test\r\nTo: b@dest.test\r\nSubject: hi\r\n\r\nHello.\r\n";

const started: Destination[] = [];
after(async () => {
  await Promise.all(started.map((d) => d.close()));
});

async function destination(options?: DestinationOptions): Promise<Destination> {
  const d = await startDestination(options);
  started.push(d);
  return d;
}

const optionsFor = (d: Destination, extra: Partial<ClientOptions> = {}): ClientOptions => ({
  host: d.host,
  port: d.port,
  heloName: "relay.test",
  tls: "opportunistic",
  ...extra,
});

async function rejection(promise: Promise<unknown>): Promise<SmtpClientError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof SmtpClientError, `expected SmtpClientError, got ${String(error)}`);
  return error;
}

describe("SmtpClientSession against the destination fixture", () => {
  test("delivers a message with SIZE and reads the greeting and extensions", async () => {
    const d = await destination();
    const session = await SmtpClientSession.open(optionsFor(d));
    assert.equal(session.greeting.code, 220);
    assert.ok(session.extensions.has("PIPELINING"));
    assert.equal(session.tls, undefined);
    const result = await session.send({ mailFrom: "a@sender.test", recipients: ["b@dest.test"] }, bytes(MESSAGE));
    await session.quit();
    assert.equal(result.mail.code, 250);
    assert.equal(result.mail.command, `MAIL FROM:<a@sender.test> SIZE=${MESSAGE.length}`);
    assert.deepEqual(result.recipients.map((r) => [r.address, r.reply.code, r.reply.command]), [[
      "b@dest.test",
      250,
      "RCPT TO:<b@dest.test>",
    ]]);
    assert.equal(result.data?.code, 250);
    assert.equal(result.data?.enhanced, "2.0.0");
    const [received] = d.messages;
    assert.equal(received?.mailFrom, "a@sender.test");
    assert.deepEqual(received?.recipients, ["b@dest.test"]);
    assert.equal(received?.data, MESSAGE);
    assert.deepEqual(received?.mailParams, [`SIZE=${MESSAGE.length}`]);
    assert.equal(received?.helo, "relay.test");
    assert.equal(d.sessions[0]?.commands.at(-1), "QUIT");
  });

  test("mixed per-recipient outcomes in one pipelined transaction", async () => {
    const d = await destination();
    const session = await SmtpClientSession.open(optionsFor(d));
    const recipients = ["ok@dest.test", "tempfail@dest.test", "nouser@dest.test", "bounce@dest.test", "also@dest.test"];
    const result = await session.send({ mailFrom: "", recipients }, bytes(MESSAGE));
    await session.quit();
    assert.deepEqual(result.recipients.map((r) => [r.address, r.reply.code, r.reply.enhanced]), [
      ["ok@dest.test", 250, "2.1.5"],
      ["tempfail@dest.test", 451, "4.3.0"],
      ["nouser@dest.test", 550, "5.1.1"],
      ["bounce@dest.test", 550, "5.1.1"],
      ["also@dest.test", 250, "2.1.5"],
    ]);
    assert.equal(result.data?.code, 250);
    assert.deepEqual(recipientOutcomes(result).map((o) => [o.reply.code, o.reply.command]), [
      [250, "end of DATA"],
      [451, "RCPT TO:<tempfail@dest.test>"],
      [550, "RCPT TO:<nouser@dest.test>"],
      [550, "RCPT TO:<bounce@dest.test>"],
      [250, "end of DATA"],
    ]);
    assert.equal(d.messages[0]?.mailFrom, "");
    assert.deepEqual(d.messages[0]?.recipients, ["ok@dest.test", "also@dest.test"]);
    assert.ok(d.sessions[0]!.maxCommandsPerRead > 1, "MAIL, RCPTs and DATA were sent in one write");
  });

  for (const acceptDataWithoutRecipients of [false, true]) {
    test(`all recipients refused (server answers DATA with ${acceptDataWithoutRecipients ? "354" : "554"}), session stays usable`, async () => {
      const d = await destination({ acceptDataWithoutRecipients });
      const session = await SmtpClientSession.open(optionsFor(d));
      const result = await session.send({
        mailFrom: "a@sender.test",
        recipients: ["permfail@dest.test", "tempfail@dest.test"],
      }, bytes(MESSAGE));
      assert.deepEqual(result.recipients.map((r) => r.reply.code), [550, 451]);
      assert.equal(result.data, undefined);
      assert.equal(d.messages.length, 0);
      const second = await session.send({ mailFrom: "a@sender.test", recipients: ["ok@dest.test"] }, bytes(MESSAGE));
      await session.quit();
      assert.equal(second.data?.code, 250);
      assert.equal(second.mail.code, 250, "no nested MAIL: the failed transaction was reset or ended");
      assert.equal(d.messages.length, 1);
      assert.equal(d.connections, 1);
    });
  }

  test("greylisted recipient is accepted on the second attempt", async () => {
    const d = await destination();
    const envelope = { mailFrom: "a@sender.test", recipients: ["greylist@dest.test"] };
    const session = await SmtpClientSession.open(optionsFor(d));
    const first = await session.send(envelope, bytes(MESSAGE));
    assert.equal(first.recipients[0]?.reply.code, 450);
    assert.equal(first.recipients[0]?.reply.enhanced, "4.2.0");
    const second = await session.send(envelope, bytes(MESSAGE));
    await session.quit();
    assert.equal(second.recipients[0]?.reply.code, 250);
    assert.equal(second.data?.code, 250);
    assert.equal(d.messages.length, 1);
  });

  test("DATA refused after the data (datafail) is reported in data, then RSET is not needed", async () => {
    const d = await destination();
    const session = await SmtpClientSession.open(optionsFor(d));
    const result = await session.send(
      { mailFrom: "a@sender.test", recipients: ["datafail@dest.test"] },
      bytes(MESSAGE),
    );
    assert.equal(result.recipients[0]?.reply.code, 250);
    assert.equal(result.data?.code, 554);
    assert.equal(result.data?.enhanced, "5.6.0");
    assert.equal(recipientOutcomes(result)[0]?.reply.code, 554);
    const again = await session.send({ mailFrom: "a@sender.test", recipients: ["x@dest.test"] }, bytes(MESSAGE));
    await session.quit();
    assert.equal(again.data?.code, 250);
    assert.ok(!d.sessions[0]!.commands.includes("RSET"));
  });

  test("server disconnect during DATA is a typed error with the replies so far", async () => {
    const d = await destination();
    const session = await SmtpClientSession.open(optionsFor(d));
    const error = await rejection(
      session.send(
        { mailFrom: "a@sender.test", recipients: ["disconnect@dest.test", "nouser@dest.test"] },
        bytes(MESSAGE),
      ),
    );
    assert.equal(error.kind, "disconnected");
    assert.equal(error.stage, "dataEnd");
    assert.equal(error.partial?.mail?.code, 250);
    assert.deepEqual(error.partial?.recipients.map((r) => r.reply.code), [250, 550]);
    assert.equal(session.usable, false);
    assert.equal(
      (await rejection(session.send({ mailFrom: "", recipients: ["x@dest.test"] }, bytes(MESSAGE)))).kind,
      "closed",
    );
    assert.equal(d.messages.length, 0);
  });

  test("421 greeting", async () => {
    const d = await destination({ greetingCode: 421, banner: "busy.test" });
    const error = await rejection(SmtpClientSession.open(optionsFor(d)));
    assert.equal(error.kind, "reply");
    assert.equal(error.stage, "greeting");
    assert.equal(error.reply?.code, 421);
    assert.equal(error.reply?.enhanced, "4.3.2");
  });

  test("silent server: timeout at the greeting stage", async () => {
    const d = await destination({ silent: true });
    const error = await rejection(SmtpClientSession.open(optionsFor(d, { timeouts: { greeting: 50 } })));
    assert.equal(error.kind, "timeout");
    assert.equal(error.stage, "greeting");
    assert.equal(d.connections, 1);
  });

  test("connection refused", async () => {
    const d = await destination();
    const port = d.port;
    await d.close();
    const error = await rejection(
      SmtpClientSession.open({ host: "127.0.0.1", port, heloName: "relay.test", tls: "none" }),
    );
    assert.equal(error.kind, "refused");
    assert.equal(error.stage, "connect");
  });

  test("dot-stuffing: lines starting with '.' arrive intact; 8-bit body gets BODY=8BITMIME", async () => {
    const d = await destination();
    const body = "Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nnot.leading\r\n. space\r\ncaf\u00e9\r\n";
    const session = await SmtpClientSession.open(optionsFor(d));
    await session.send({ mailFrom: "a@sender.test", recipients: ["b@dest.test"] }, bytes(body));
    await session.quit();
    assert.equal(d.messages[0]?.data, body);
    assert.ok(d.messages[0]?.mailParams.includes("BODY=8BITMIME"));
  });

  test("message without a final CRLF gets one", async () => {
    const d = await destination();
    const session = await SmtpClientSession.open(optionsFor(d));
    const result = await session.send(
      { mailFrom: "a@sender.test", recipients: ["b@dest.test"] },
      bytes("Subject: x\r\n\r\nno newline at the end"),
    );
    await session.quit();
    assert.equal(result.data?.code, 250);
    assert.equal(d.messages[0]?.data, "Subject: x\r\n\r\nno newline at the end\r\n");
  });

  test("one session delivers two messages", async () => {
    const d = await destination();
    const session = await SmtpClientSession.open(optionsFor(d));
    const one = await session.send(
      { mailFrom: "a@sender.test", recipients: ["one@dest.test"] },
      bytes("Subject: 1\r\n\r\none\r\n"),
    );
    const two = await session.send(
      { mailFrom: "b@sender.test", recipients: ["two@dest.test"] },
      bytes("Subject: 2\r\n\r\ntwo\r\n"),
    );
    await session.quit();
    assert.equal(one.data?.code, 250);
    assert.equal(two.data?.code, 250);
    await d.waitFor(2);
    await d.waitFor((messages) => messages.some((m) => m.mailFrom === "b@sender.test"));
    assert.deepEqual(d.messages.map((m) => [m.mailFrom, m.recipients[0], m.data]), [
      ["a@sender.test", "one@dest.test", "Subject: 1\r\n\r\none\r\n"],
      ["b@sender.test", "two@dest.test", "Subject: 2\r\n\r\ntwo\r\n"],
    ]);
    assert.equal(d.connections, 1);
  });

  test("lockstep when PIPELINING is not offered", async () => {
    const d = await destination({ pipelining: false });
    const session = await SmtpClientSession.open(optionsFor(d));
    assert.ok(!session.extensions.has("PIPELINING"));
    const result = await session.send({
      mailFrom: "a@sender.test",
      recipients: ["x@dest.test", "nouser@dest.test", "y@dest.test"],
    }, bytes(MESSAGE));
    const refused = await session.send({ mailFrom: "a@sender.test", recipients: ["nouser@dest.test"] }, bytes(MESSAGE));
    const after = await session.send({ mailFrom: "a@sender.test", recipients: ["z@dest.test"] }, bytes(MESSAGE));
    await session.quit();
    assert.deepEqual(result.recipients.map((r) => r.reply.code), [250, 550, 250]);
    assert.equal(result.data?.code, 250);
    assert.equal(refused.data, undefined);
    assert.equal(after.data?.code, 250);
    const log = d.sessions[0]!;
    assert.equal(log.maxCommandsPerRead, 1, "each command waited for its reply");
    const size = `SIZE=${MESSAGE.length}`;
    // No DATA when every RCPT failed; RSET before the next MAIL (RFC 5321 4.1.1.5).
    assert.deepEqual(log.commands, [
      "EHLO relay.test",
      `MAIL FROM:<a@sender.test> ${size}`,
      "RCPT TO:<x@dest.test>",
      "RCPT TO:<nouser@dest.test>",
      "RCPT TO:<y@dest.test>",
      "DATA",
      `MAIL FROM:<a@sender.test> ${size}`,
      "RCPT TO:<nouser@dest.test>",
      "RSET",
      `MAIL FROM:<a@sender.test> ${size}`,
      "RCPT TO:<z@dest.test>",
      "DATA",
      "QUIT",
    ]);
    assert.deepEqual(d.messages.map((m) => m.recipients), [["x@dest.test", "y@dest.test"], ["z@dest.test"]]);
  });

  test("binds to localAddress 127.0.0.2", async () => {
    const d = await destination();
    const session = await SmtpClientSession.open(optionsFor(d, { localAddress: "127.0.0.2" }));
    assert.equal(session.localAddress, "127.0.0.2");
    await session.send({ mailFrom: "a@sender.test", recipients: ["b@dest.test"] }, bytes(MESSAGE));
    await session.quit();
    assert.equal(d.sessions[0]?.remoteAddress.replace(/^::ffff:/, ""), "127.0.0.2");
    assert.equal(d.messages[0]?.remoteAddress.replace(/^::ffff:/, ""), "127.0.0.2");
  });

  test("invalid addresses are refused before anything is written", async () => {
    const d = await destination();
    const session = await SmtpClientSession.open(optionsFor(d));
    await assert.rejects(
      session.send({ mailFrom: "a@x\r\nRSET", recipients: ["b@dest.test"] }, bytes(MESSAGE)),
      TypeError,
    );
    await assert.rejects(session.send({ mailFrom: "a@x", recipients: [] }, bytes(MESSAGE)), TypeError);
    assert.equal(session.usable, true);
    await session.quit();
  });
});

describe("SmtpClientSession: a server that ends the session between transactions", () => {
  // A pooled connection must leave the pool when this happens, not when the next message finds it dead.
  for (const how of ["fin", "reset", "421"] as const) {
    test(`${how}: the session is over at once and says so`, async () => {
      const d = await destination();
      const session = await SmtpClientSession.open(optionsFor(d));
      const first = await session.send({ mailFrom: "a@sender.test", recipients: ["b@dest.test"] }, bytes(MESSAGE));
      assert.equal(first.data?.code, 250);
      let closed = false;
      void session.closed?.then(() => (closed = true));
      await d.close(how);
      await session.closed;
      assert.equal(closed, true, "closed settled");
      assert.equal(session.usable, false);
      // The client closes the connection, after a 421 too (RFC 5321 3.8), and writes nothing more.
      await d.waitUntilIdle();
      assert.equal(d.sessions[0]?.commands.at(-1), "DATA");
    });
  }

  test("a 421 while idle is not read as the reply to the next command", async () => {
    const d = await destination();
    const session = await SmtpClientSession.open(optionsFor(d));
    await d.close("421");
    await session.closed;
    const error = await rejection(
      session.send({ mailFrom: "a@sender.test", recipients: ["b@dest.test"] }, bytes(MESSAGE)),
    );
    assert.equal(error.kind, "closed");
    assert.deepEqual(d.sessions[0]?.commands, ["EHLO relay.test"]);
  });
});
