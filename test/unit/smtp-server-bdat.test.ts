import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { reply } from "../../src/core/reply.ts";
import { Wire } from "../helpers/wire.ts";
import { type SmtpServerHooks, type SmtpServerOptions, startSmtpServer } from "../../src/smtp/server/index.ts";
import { failOnSessionError } from "../helpers/smtp-server.ts";

const latin1 = new TextDecoder("latin1");

async function withServer(
  options: Partial<SmtpServerOptions>,
  body: (port: number, got: string[], hooks: SmtpServerHooks) => Promise<void>,
) {
  const got: string[] = [];
  const hooks: SmtpServerHooks = {
    onRcptTo: async () => undefined,
    onData: async (_s, _e, message) => {
      got.push(latin1.decode(message));
      return reply(250, "2.0.0", `Queued as ${got.length}`);
    },
  };
  const server = await startSmtpServer({ host: "127.0.0.1", port: 0 }, {
    hostname: "mx.test",
    maxMessageBytes: 1000,
    maxRecipients: 5,
    onError: failOnSessionError,
    ...options,
  }, hooks);
  try {
    await body(server.port, got, hooks);
  } finally {
    await server.closeAll();
  }
}

describe("SMTP CHUNKING / BDAT (RFC 3030)", () => {
  it("advertises CHUNKING and takes a message in one chunk, without dot-unstuffing; bare CR and LF become CRLF", async () => {
    await withServer({}, async (port, got) => {
      const c = await Wire.open(port);
      const ehlo = await c.ready();
      assert.ok(ehlo.split("\r\n").some((l) => l.slice(4) === "CHUNKING"));
      assert.ok(!/BINARYMIME/.test(ehlo), "BINARYMIME is not offered");
      const content = "Subject: x\r\n\r\n..dot\r\nbare\nlf and bare\rcr\r\n.\r\nMAIL FROM:<evil@x.test>\r\n";
      c.send(`BDAT ${content.length} LAST\r\n${content}`);
      assert.equal(await c.reply(), "250 2.0.0 Queued as 1");
      assert.deepEqual(got, [content.replace("bare\nlf and bare\rcr", "bare\r\nlf and bare\r\ncr")]);
      assert.equal(await c.cmd("NOOP"), "250 2.0.0 OK");
    });
  });

  it("accumulates several chunks; a LAST of size 0 ends the message", async () => {
    await withServer({}, async (port, got) => {
      const c = await Wire.open(port);
      await c.ready();
      c.send("BDAT 5\r\nHello");
      assert.equal(await c.reply(), "250 2.0.0 5 octets received");
      c.send("BDAT 8\r\n, world");
      c.send("!");
      assert.equal(await c.reply(), "250 2.0.0 8 octets received");
      assert.equal(got.length, 0, "nothing is handed over before LAST");
      assert.equal(await c.cmd("BDAT 0 LAST"), "250 2.0.0 Queued as 1");
      assert.deepEqual(got, ["Hello, world!"]);
      // An empty message in a single "BDAT 0 LAST" is a message too.
      await c.cmd("MAIL FROM:<a@x.test>");
      await c.cmd("RCPT TO:<b@x.test>");
      assert.equal(await c.cmd("BDAT 0 LAST"), "250 2.0.0 Queued as 2");
      assert.deepEqual(got, ["Hello, world!", ""]);
    });
  });

  it("answers pipelined chunks in order, and chunk content is never read as commands", async () => {
    await withServer({}, async (port, got) => {
      const c = await Wire.open(port);
      await c.reply();
      const one = "RSET\r\nQUIT\r\n";
      const two = "DATA\r\n";
      c.send(
        `EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nBDAT ${one.length}\r\n${one}BDAT ${two.length} LAST\r\n${two}NOOP\r\n`,
      );
      const last = (await c.replies(6)).map((r) => r.split("\r\n").pop());
      assert.deepEqual(last, [
        "250 DSN",
        "250 2.1.0 Sender OK",
        "250 2.1.5 Recipient OK",
        "250 2.0.0 12 octets received",
        "250 2.0.0 Queued as 1",
        "250 2.0.0 OK",
      ]);
      assert.deepEqual(got, [one + two]);
    });
  });

  it("refuses a message over the size limit with 552 after reading it, and drops chunks still in the pipeline", async () => {
    await withServer({ maxMessageBytes: 100 }, async (port, got) => {
      const c = await Wire.open(port);
      await c.ready();
      c.send(`BDAT 60\r\n${"a".repeat(60)}BDAT 60\r\n${"b".repeat(60)}BDAT 6 LAST\r\nFROB\r\nNOOP\r\n`);
      assert.equal(await c.reply(), "250 2.0.0 60 octets received");
      assert.equal(await c.reply(), "552 5.3.4 Message size exceeds fixed maximum message size of 100 bytes");
      // The pipelined LAST chunk is consumed ("FROB" is data, not a command) and refused: no transaction.
      assert.equal(await c.reply(), "503 5.5.1 Send MAIL first");
      assert.equal(await c.reply(), "250 2.0.0 OK");
      // One chunk over the limit on its own.
      await c.cmd("MAIL FROM:<a@x.test>");
      await c.cmd("RCPT TO:<b@x.test>");
      c.send(`BDAT 101 LAST\r\n${"c".repeat(101)}`);
      assert.match(await c.reply(), /^552 5\.3\.4 /);
      assert.equal(await c.cmd("NOOP"), "250 2.0.0 OK");
      assert.equal(got.length, 0);
      // Exactly at the limit is fine.
      await c.cmd("MAIL FROM:<a@x.test>");
      await c.cmd("RCPT TO:<b@x.test>");
      c.send(`BDAT 100 LAST\r\n${"d".repeat(100)}`);
      assert.equal(await c.reply(), "250 2.0.0 Queued as 1");
    });
  });

  it("does not mix DATA and BDAT in one transaction (503)", async () => {
    await withServer({}, async (port, got) => {
      const c = await Wire.open(port);
      await c.ready();
      c.send("BDAT 4\r\nabc\n");
      assert.equal(await c.reply(), "250 2.0.0 4 octets received");
      assert.equal(await c.cmd("DATA"), "503 5.5.1 DATA not allowed after BDAT; send BDAT LAST or RSET");
      c.send("BDAT 3 LAST\r\ndef");
      assert.equal(await c.reply(), "250 2.0.0 Queued as 1");
      assert.deepEqual(got, ["abc\r\ndef"]);
    });
  });

  it("reads and drops a refused chunk, and answers a bad BDAT with 501", async () => {
    await withServer({}, async (port, got) => {
      const c = await Wire.open(port);
      await c.reply();
      c.send("BDAT 6 LAST\r\nFROB\r\n");
      assert.equal(await c.reply(), "503 5.5.1 Send EHLO or HELO first");
      await c.cmd("EHLO c");
      c.send("BDAT 6\r\nFROB\r\n");
      assert.equal(await c.reply(), "503 5.5.1 Send MAIL first");
      await c.cmd("MAIL FROM:<a@x.test>");
      c.send("BDAT 6 LAST\r\nFROB\r\n");
      assert.equal(await c.reply(), "503 5.5.1 Send RCPT first");
      assert.equal(await c.cmd("BDAT x"), "501 5.5.4 Syntax: BDAT chunk-size [LAST]");
      assert.equal(await c.cmd("NOOP"), "250 2.0.0 OK");
      assert.equal(got.length, 0);
    });
  });

  it("sends the reply after BDAT LAST only once onData has resolved", async () => {
    await withServer({}, async (port, got, hooks) => {
      let release!: () => void;
      let called = false;
      const durable = hooks.onData;
      hooks.onData = async (s, e, m) => {
        called = true;
        await new Promise<void>((r) => (release = r));
        return durable(s, e, m);
      };
      const c = await Wire.open(port);
      await c.ready();
      c.send("BDAT 2 LAST\r\nhi");
      while (!called) await new Promise((r) => setImmediate(r));
      // A full round trip on another session: the server has had every chance to answer early.
      const other = await Wire.open(port);
      await other.reply();
      assert.equal(await other.cmd("NOOP"), "250 2.0.0 OK");
      assert.equal(c.buffer, "", "no reply before the message is durable");
      release();
      assert.equal(await c.reply(), "250 2.0.0 Queued as 1");
      assert.deepEqual(got, ["hi"]);
    });
  });
});
