import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MemoryBudget } from "../../src/core/memory-budget.ts";
import { reply } from "../../src/core/reply.ts";
import { Wire } from "../helpers/wire.ts";
import {
  type Envelope,
  type SmtpServerHandle,
  type SmtpServerHooks,
  type SmtpServerOptions,
  startSmtpServer,
} from "../../src/smtp/server/index.ts";
import { failOnSessionError } from "../helpers/smtp-server.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withServer(
  options: Partial<SmtpServerOptions>,
  body: (port: number, got: Envelope[], hooks: SmtpServerHooks, server: SmtpServerHandle) => Promise<void>,
) {
  const got: Envelope[] = [];
  const hooks: SmtpServerHooks = {
    onRcptTo: async () => undefined,
    onData: async (_s, envelope) => {
      got.push(envelope);
      return reply(250, "2.0.0", `Queued as ${got.length}`);
    },
  };
  const server = await startSmtpServer({ host: "127.0.0.1", port: 0 }, {
    hostname: "mx.test",
    maxMessageBytes: 10_000,
    maxRecipients: 5,
    onError: failOnSessionError,
    ...options,
  }, hooks);
  try {
    await body(server.port, got, hooks, server);
  } finally {
    await server.closeAll();
  }
}

describe("SMTP session limits", () => {
  it("limits concurrent connections per client address with 421 4.7.0", async () => {
    await withServer({ maxConnectionsPerIp: 2 }, async (port) => {
      const a = await Wire.open(port);
      const b = await Wire.open(port);
      assert.equal(await a.reply(), "220 mx.test ESMTP");
      assert.equal(await b.reply(), "220 mx.test ESMTP");
      const c = await Wire.open(port);
      assert.equal(await c.reply(), "421 4.7.0 mx.test Too many connections from your address, try again later");
      assert.equal(await c.reply(), "", "then closed");
      // Another address is not affected (all of 127/8 is loopback on Linux).
      const other = await Wire.open(port, "127.0.0.2");
      assert.equal(await other.reply(), "220 mx.test ESMTP");
      // A place frees up when a session ends.
      assert.match(await a.cmd("QUIT"), /^221 /);
      await a.closedP();
      let greeting = "";
      for (let i = 0; i < 100 && greeting !== "220 mx.test ESMTP"; i++) {
        const d = await Wire.open(port);
        greeting = await d.reply();
        if (greeting !== "220 mx.test ESMTP") await sleep(5);
      }
      assert.equal(greeting, "220 mx.test ESMTP");
    });
  });

  it("keeps the reserved places of maxConnections for exempt addresses: a flood from outside cannot take them", async () => {
    const trusted = (address: string) => address === "127.0.0.1";
    await withServer({ maxConnections: 5, reservedConnections: 2, perIpLimitExempt: trusted }, async (port) => {
      const outsiders = [];
      for (let i = 0; i < 4; i++) outsiders.push(await Wire.open(port, `127.0.3.${i + 1}`));
      const greetings = await Promise.all(outsiders.map((w) => w.reply()));
      assert.deepEqual(greetings.slice(0, 3), ["220 mx.test ESMTP", "220 mx.test ESMTP", "220 mx.test ESMTP"]);
      assert.equal(greetings[3], "421 4.3.2 mx.test Too many connections, try again later", "the fourth is over 5 - 2");
      const inside = [await Wire.open(port), await Wire.open(port)];
      assert.deepEqual(await Promise.all(inside.map((w) => w.reply())), ["220 mx.test ESMTP", "220 mx.test ESMTP"]);
      const sixth = await Wire.open(port);
      assert.equal(await sixth.reply(), "421 4.3.2 mx.test Too many connections, try again later", "5 in all");
    });
  });

  it("answers errors past errorDelayAfter late, and closes at maxErrors with 421 4.7.0", async () => {
    await withServer({ errorDelayAfter: 2, errorDelayMs: 300, maxErrors: 4 }, async (port) => {
      const c = await Wire.open(port);
      await c.reply();
      const sent = performance.now();
      c.send("XYZZY\r\n".repeat(6));
      const at: number[] = [];
      const replies: string[] = [];
      for (let i = 0; i < 5; i++) {
        replies.push(await c.reply());
        at.push(performance.now() - sent);
      }
      assert.deepEqual(replies, [
        "500 5.5.1 Command unrecognized",
        "500 5.5.1 Command unrecognized",
        "500 5.5.1 Command unrecognized",
        "500 5.5.1 Command unrecognized",
        "421 4.7.0 mx.test Too many errors, closing channel",
      ]);
      // The third and the fourth error each waited errorDelayMs: a lower bound, whatever the machine's speed.
      assert.ok(at[3]! >= 600, `the fourth error answered after ${at[3]} ms`);
      assert.equal(await c.reply(), "", "then closed");
    });
  });

  it("counts connections open, admitted and refused over a limit", async () => {
    await withServer({ maxConnectionsPerIp: 1 }, async (port, _got, _hooks, server) => {
      assert.deepEqual(server.connections(), { open: 0, admitted: 0, refused: 0 });
      const a = await Wire.open(port);
      assert.equal(await a.reply(), "220 mx.test ESMTP");
      const b = await Wire.open(port);
      assert.match(await b.reply(), /^421 4\.7\.0 /);
      assert.deepEqual(server.connections(), { open: 1, admitted: 1, refused: 1 });
      assert.match(await a.cmd("QUIT"), /^221 /);
      await a.closedP();
      for (let i = 0; i < 100 && server.connections().open > 0; i++) await sleep(5);
      assert.deepEqual(server.connections(), { open: 0, admitted: 1, refused: 1 });
    });
  });

  it("ends an idle session at maxSessionMs with 421 4.4.2", async () => {
    await withServer({ maxSessionMs: 30, idleTimeoutMs: 60_000 }, async (port) => {
      const c = await Wire.open(port);
      await c.reply();
      await c.cmd("EHLO c");
      assert.equal(await c.reply(), "421 4.4.2 mx.test Session time limit exceeded, closing channel");
      assert.equal(await c.reply(), "");
    });
  });

  it("ends a busy session at maxSessionMs, after the reply owed for the command in progress", async () => {
    await withServer({ maxSessionMs: 30, idleTimeoutMs: 60_000 }, async (port, _got, hooks) => {
      hooks.onRcptTo = async () => void (await sleep(120)); // outlives the session limit
      const c = await Wire.open(port);
      await c.reply();
      c.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nNOOP\r\n");
      const replies = await c.replies(5);
      assert.deepEqual(replies.slice(1), [
        "250 2.1.0 Sender OK",
        "250 2.1.5 Recipient OK",
        "421 4.4.2 mx.test Session time limit exceeded, closing channel",
        "",
      ]);
    });
  });

  it("closes after more than maxCommandsWithoutMail commands without MAIL, RCPT, DATA or BDAT", async () => {
    await withServer({}, async (port) => {
      const c = await Wire.open(port);
      await c.reply();
      c.send("NOOP\r\n".repeat(51));
      const replies = await c.replies(52);
      assert.equal(replies.filter((r) => r === "250 2.0.0 OK").length, 50, "the default is 50");
      assert.equal(replies[50], "421 4.7.0 mx.test Too many commands without a mail transaction, closing channel");
      assert.equal(replies[51], "");
    });
    await withServer({ maxCommandsWithoutMail: 3 }, async (port) => {
      const c = await Wire.open(port);
      await c.reply();
      // MAIL resets the count: 2 + MAIL + RCPT + 3 is fine, a 4th in a row is not.
      c.send("EHLO c\r\nNOOP\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRSET\r\nNOOP\r\nHELP\r\nNOOP\r\n");
      const replies = (await c.replies(9)).map((r) => r.split("\r\n").pop()!.slice(0, 9));
      assert.deepEqual(replies, [
        "250 DSN",
        "250 2.0.0",
        "250 2.1.0",
        "250 2.1.5",
        "250 2.0.0",
        "250 2.0.0",
        "214 2.0.0",
        "421 4.7.0",
        "",
      ]);
    });
  });

  it("refuses a message with a line over 998 octets (500 5.5.2) after reading it all", async () => {
    await withServer({}, async (port, got) => {
      const c = await Wire.open(port);
      await c.ready();
      await c.cmd("DATA");
      c.send(`ok\r\n${"x".repeat(999)}\r\nQUIT\r\n.\r\n`);
      assert.equal(await c.reply(), "500 5.5.2 Line too long; message lines are limited to 998 octets");
      assert.equal(await c.cmd("NOOP"), "250 2.0.0 OK", "the session goes on; QUIT inside the body was data");
      // 998 octets is fine, even when the line is dot-stuffed to 999 on the wire.
      await c.cmd("MAIL FROM:<a@x.test>");
      await c.cmd("RCPT TO:<b@x.test>");
      await c.cmd("DATA");
      c.send(`${"y".repeat(998)}\r\n.${".".repeat(997)}\r\n.\r\n`);
      assert.equal(await c.reply(), "250 2.0.0 Queued as 1");
      // BDAT content is held to the same limit.
      await c.cmd("MAIL FROM:<a@x.test>");
      await c.cmd("RCPT TO:<b@x.test>");
      c.send(`BDAT 1001 LAST\r\n${"z".repeat(999)}\r\n`);
      assert.match(await c.reply(), /^500 5\.5\.2 Line too long/);
      assert.equal(got.length, 1);
    });
    await withServer({ maxTextLineLength: Infinity }, async (port) => {
      const c = await Wire.open(port);
      await c.ready();
      await c.cmd("DATA");
      assert.equal(await c.cmd(`${"x".repeat(5000)}\r\n.`), "250 2.0.0 Queued as 1");
    });
  });

  it("refuses NUL in commands with 500 5.5.2", async () => {
    await withServer({}, async (port, got) => {
      const c = await Wire.open(port);
      await c.reply();
      await c.cmd("EHLO c");
      assert.equal(await c.cmd("NOOP\0"), "500 5.5.2 NUL character in command");
      assert.equal(await c.cmd("MAIL FROM:<a\0b@x.test>"), "500 5.5.2 NUL character in command");
      assert.equal(await c.cmd("RCPT TO:<b@x.test>"), "503 5.5.1 Send MAIL first");
      assert.equal(got.length, 0);
    });
  });

  it("takes a UTF-8 address only with the SMTPUTF8 MAIL parameter (RFC 6531 3.4), else 553 5.6.7 (3.5)", async () => {
    await withServer({}, async (port, got) => {
      const c = await Wire.open(port);
      await c.reply();
      await c.cmd("EHLO c");
      assert.match(await c.cmd("MAIL FROM:<josé@x.test>"), /^553 5\.6\.7 /);
      assert.equal(await c.cmd("MAIL FROM:<a@x.test> AUTH=<>"), "250 2.1.0 Sender OK");
      assert.match(await c.cmd("RCPT TO:<zoë@x.test>"), /^553 5\.6\.7 /);
      c.send(Buffer.concat([Buffer.from("RCPT TO:<a"), Buffer.from([0xc3, 0x28]), Buffer.from("@x.test> \r\n")]));
      assert.equal(await c.reply(), "500 5.5.2 Invalid UTF-8 in command", "an invalid UTF-8 sequence");
      await c.cmd("RSET");
      // A ">" in a later parameter must not hide SMTPUTF8.
      assert.equal(await c.cmd("MAIL FROM:<josé@x.test> SMTPUTF8 AUTH=<>"), "250 2.1.0 Sender OK");
      assert.equal(await c.cmd("RCPT TO:<zoë@bücher.test>"), "250 2.1.5 Recipient OK");
      await c.cmd("DATA");
      await c.cmd("x\r\n.");
      assert.deepEqual(got[0]!.mailFrom, { local: "josé", domain: "x.test" });
      assert.deepEqual(got[0]!.mailParams, { smtputf8: true }, "AUTH=<> is accepted and ignored");
      assert.deepEqual(got[0]!.recipients[0]!.mailbox, { local: "zoë", domain: "bücher.test" });
    });
  });
});

describe("SMTP memory for messages being received", () => {
  it("makes a DATA wait for its 354 until the SIZE it declared is free, then reads it", async () => {
    const budget = new MemoryBudget(10_000);
    await withServer({ messageMemory: budget }, async (port, got) => {
      const a = await Wire.open(port);
      const b = await Wire.open(port);
      for (const w of [a, b]) {
        await w.reply();
        await w.cmd("EHLO client.test");
        assert.match(await w.cmd("MAIL FROM:<a@x.test> SIZE=8000"), /^250 /);
        assert.match(await w.cmd("RCPT TO:<b@x.test>"), /^250 /);
      }
      assert.match(await a.cmd("DATA"), /^354 /);
      assert.equal(budget.used, 8_000);
      b.send("DATA\r\n");
      const bReplied = b.reply();
      await sleep(50);
      assert.equal(got.length, 0);
      assert.equal(await a.cmd("Subject: a\r\n\r\nx\r\n."), "250 2.0.0 Queued as 1");
      assert.match(await bReplied, /^354 /, "b's turn once a's message is done");
      assert.equal(await b.cmd("Subject: b\r\n\r\nx\r\n."), "250 2.0.0 Queued as 2");
      assert.equal(budget.used, 0);
    });
  });

  it("reserves a little for a message without SIZE, so that many small ones go at once", async () => {
    const budget = new MemoryBudget(4 * 1024 * 1024);
    await withServer({ messageMemory: budget, maxMessageBytes: 25 * 1024 * 1024 }, async (port) => {
      const wires = await Promise.all(Array.from({ length: 8 }, () => Wire.open(port)));
      for (const w of wires) await w.ready();
      for (const w of wires) assert.match(await w.cmd("DATA"), /^354 /);
      assert.ok(budget.used <= 2 * 1024 * 1024, `${budget.used} reserved for 8 messages of unknown size`);
      for (const w of wires) assert.match(await w.cmd("Subject: s\r\n\r\nx\r\n."), /^250 /);
      assert.equal(budget.used, 0);
    });
  });

  it("answers 452 4.3.1 when none is free in time, and when a message outgrows its SIZE past what is free", async () => {
    const budget = new MemoryBudget(2 * 1024 * 1024);
    await withServer(
      { messageMemory: budget, messageMemoryWaitMs: 50, maxMessageBytes: 4 * 1024 * 1024 },
      async (port) => {
        const other = budget.tryReserve(2 * 1024 * 1024 - 100)!;
        const a = await Wire.open(port);
        await a.reply();
        await a.cmd("EHLO client.test");
        assert.match(await a.cmd("MAIL FROM:<a@x.test> SIZE=1000"), /^250 /);
        assert.match(await a.cmd("RCPT TO:<b@x.test>"), /^250 /);
        assert.equal(
          await a.cmd("DATA"),
          "452 4.3.1 mx.test Insufficient system resources for the message now, try again later",
        );
        other.release();
        assert.match(await a.cmd("DATA"), /^354 /);
        // Declared 1,000 octets, sends 3 MiB: more than the budget holds.
        const line = `${"x".repeat(76)}\r\n`;
        a.send(line.repeat(Math.ceil((3 * 1024 * 1024) / line.length)));
        assert.equal(
          await a.cmd("."),
          "452 4.3.1 mx.test Insufficient system resources for the message now, try again later",
        );
        assert.equal(budget.used, 0);
      },
    );
  });
});
