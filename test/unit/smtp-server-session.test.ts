import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import type { Mailbox } from "../../src/core/address.ts";
import { reply } from "../../src/core/reply.ts";
import {
  type Envelope,
  type SmtpServerHandle,
  type SmtpServerHooks,
  type SmtpServerOptions,
  startSmtpServer,
} from "../../src/smtp/server/index.ts";
import { failOnSessionError } from "../helpers/smtp-server.ts";

/** A raw SMTP client over node:net: send text, read whole replies. */
class Client {
  #buffer = "";
  #wake?: () => void;
  #closed = false;
  constructor(public socket: net.Socket) {
    this.listen(socket);
  }
  listen(socket: net.Socket): void {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.#buffer += d;
      this.#wake?.();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
  }
  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => resolve(new Client(s)));
      s.once("error", reject);
    });
  }
  send(text: string): void {
    this.socket.write(text);
  }
  /** The next complete reply ("250-a\r\n250 b\r\n" is one), or "" when the server closed. */
  async reply(): Promise<string> {
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.#buffer);
      if (m) {
        this.#buffer = this.#buffer.slice(m[0].length);
        return m[0].trimEnd();
      }
      if (this.#closed) return "";
      await new Promise<void>((r) => (this.#wake = r));
    }
  }
  async replies(n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.reply());
    return out;
  }
  /** Resolves when the server has closed the connection (and nothing more came). */
  async closed(): Promise<string> {
    while (!this.#closed) await new Promise<void>((r) => (this.#wake = r));
    return this.#buffer;
  }
  async cmd(text: string): Promise<string> {
    this.send(text + "\r\n");
    return this.reply();
  }
  async ehlo(): Promise<string> {
    assert.match(await this.reply(), /^220 mx\.test ESMTP$/);
    return this.cmd("EHLO client.test");
  }
}

interface Recorder {
  hooks: SmtpServerHooks;
  messages: { envelope: Envelope; text: string; secure: boolean }[];
}

function recorder(overrides: Partial<SmtpServerHooks> = {}): Recorder {
  const messages: Recorder["messages"] = [];
  return {
    messages,
    hooks: {
      async onRcptTo(_s, to: Mailbox) {
        return to.local === "reject" ? reply(550, "5.1.1", "No such user") : undefined;
      },
      async onData(s, envelope, message) {
        messages.push({ envelope, text: new TextDecoder().decode(message), secure: s.secure });
        return reply(250, "2.0.0", `Queued as ${messages.length}`);
      },
      ...overrides,
    },
  };
}

const base: SmtpServerOptions = {
  hostname: "mx.test",
  maxMessageBytes: 1000,
  maxRecipients: 3,
  onError: failOnSessionError,
};

async function withServer(
  options: Partial<SmtpServerOptions>,
  rec: Recorder,
  body: (port: number, server: SmtpServerHandle) => Promise<void>,
): Promise<void> {
  const server = await startSmtpServer({ host: "127.0.0.1", port: 0 }, { ...base, ...options }, rec.hooks);
  try {
    await body(server.port, server);
  } finally {
    await server.closeAll();
  }
}

describe("SMTP session", () => {
  it("runs a full transaction", async () => {
    const rec = recorder();
    await withServer({}, rec, async (port) => {
      const c = await Client.connect(port);
      const ehlo = await c.ehlo();
      assert.equal(ehlo.split("\r\n")[0], "250-mx.test greets client.test");
      for (const ext of ["PIPELINING", "SIZE 1000", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN"]) {
        assert.ok(ehlo.split("\r\n").some((l) => l.slice(4) === ext), `EHLO advertises ${ext}`);
      }
      assert.ok(!ehlo.includes("STARTTLS"), "no STARTTLS without a certificate");
      assert.equal(await c.cmd("MAIL FROM:<Sender@Example.COM> SIZE=50 BODY=8BITMIME"), "250 2.1.0 Sender OK");
      assert.equal(await c.cmd("RCPT TO:<a@example.net> NOTIFY=SUCCESS,FAILURE"), "250 2.1.5 Recipient OK");
      assert.equal(await c.cmd("RCPT TO:<reject@example.net>"), "550 5.1.1 No such user");
      assert.equal(await c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>");
      assert.equal(await c.cmd("Subject: hi\r\n\r\nbody\r\n."), "250 2.0.0 Queued as 1");
      assert.equal(await c.cmd("QUIT"), "221 2.0.0 mx.test Service closing transmission channel");
      await c.closed();
      assert.equal(rec.messages.length, 1);
      const { envelope, text } = rec.messages[0]!;
      assert.deepEqual(envelope.mailFrom, { local: "Sender", domain: "example.com" });
      assert.deepEqual(envelope.mailParams, { size: 50, body: "8BITMIME" });
      assert.deepEqual(envelope.recipients, [{
        mailbox: { local: "a", domain: "example.net" },
        params: { notify: ["SUCCESS", "FAILURE"] },
      }]);
      assert.equal(text, "Subject: hi\r\n\r\nbody\r\n");
    });
  });

  it("answers pipelined commands in order while hooks resolve out of order", async () => {
    const waits: (() => void)[] = [];
    const rec = recorder({
      async onRcptTo(_s, to) {
        // The first recipient's hook finishes last; replies must still come in order.
        if (to.local === "slow") await new Promise<void>((r) => waits.push(r));
        return to.local === "reject" ? reply(550, "5.1.1", "No such user") : undefined;
      },
    });
    await withServer({}, rec, async (port) => {
      const c = await Client.connect(port);
      await c.reply();
      c.send(
        "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<slow@x.test>\r\nRCPT TO:<reject@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nhello\r\n.\r\nNOOP\r\n",
      );
      while (waits.length === 0) await new Promise((r) => setImmediate(r));
      waits[0]!();
      const got = (await c.replies(8)).map((r) => r.split("\r\n").pop()!);
      assert.deepEqual(got, [
        "250 DSN",
        "250 2.1.0 Sender OK",
        "250 2.1.5 Recipient OK",
        "550 5.1.1 No such user",
        "250 2.1.5 Recipient OK",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 Queued as 1",
        "250 2.0.0 OK",
      ]);
      assert.equal(rec.messages[0]!.envelope.mailFrom, null);
      assert.deepEqual(rec.messages[0]!.envelope.recipients.map((r) => r.mailbox.local), ["slow", "b"]);
      assert.equal(rec.messages[0]!.text, "hello\r\n");
    });
  });

  it("removes dot-stuffing", async () => {
    const rec = recorder();
    await withServer({}, rec, async (port) => {
      const c = await Client.connect(port);
      await c.ehlo();
      await c.cmd("MAIL FROM:<a@x.test>");
      await c.cmd("RCPT TO:<b@x.test>");
      await c.cmd("DATA");
      assert.equal(await c.cmd("..leading dot\r\n...\r\nmid.dle\r\n..\r\n."), "250 2.0.0 Queued as 1");
      assert.equal(rec.messages[0]!.text, ".leading dot\r\n..\r\nmid.dle\r\n.\r\n");
    });
  });

  for (
    const [name, body] of [
      ["bare LF dot bare LF", "a\r\n\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@x.test>\r\nDATA\r\nforged\r\n"],
      ["CRLF dot bare LF", "a\r\n.\nMAIL FROM:<evil@x.test>\r\n"],
      ["bare LF dot CRLF", "a\n.\r\nMAIL FROM:<evil@x.test>\r\n"],
      ["bare CR dot bare CR", "a\r.\rMAIL FROM:<evil@x.test>\r\n"],
    ] as const
  ) {
    it(`does not end or split DATA at a smuggled end (${name})`, async () => {
      const rec = recorder();
      await withServer({}, rec, async (port) => {
        const c = await Client.connect(port);
        await c.ehlo();
        await c.cmd("MAIL FROM:<a@x.test>");
        await c.cmd("RCPT TO:<b@x.test>");
        await c.cmd("DATA");
        c.send(body + "real end\r\n.\r\nNOOP\r\n");
        // One reply for the whole body (the smuggled MAIL is data), then NOOP's.
        assert.equal(await c.reply(), "550 5.6.11 Bare CR or LF in message; lines must end with CRLF");
        assert.equal(await c.reply(), "250 2.0.0 OK");
        assert.equal(rec.messages.length, 0);
        // The transaction is over: a new one works.
        assert.equal(await c.cmd("MAIL FROM:<a@x.test>"), "250 2.1.0 Sender OK");
      });
    });
  }

  it("rejects a bare LF in a command line without treating it as a line end", async () => {
    await withServer({}, recorder(), async (port) => {
      const c = await Client.connect(port);
      await c.ehlo();
      c.send("NOOP\nMAIL FROM:<a@x.test>\r\n");
      assert.equal(await c.reply(), "500 5.5.2 Bare CR or LF in command; lines end with CRLF");
      assert.equal(await c.cmd("RCPT TO:<b@x.test>"), "503 5.5.1 Send MAIL first");
    });
  });

  it("refuses oversized messages with 552 and stays usable", async () => {
    const rec = recorder();
    await withServer({ maxMessageBytes: 100 }, rec, async (port) => {
      const c = await Client.connect(port);
      await c.ehlo();
      assert.match(await c.cmd("MAIL FROM:<a@x.test> SIZE=101"), /^552 5\.3\.4 /);
      assert.equal(await c.cmd("MAIL FROM:<a@x.test> SIZE=100"), "250 2.1.0 Sender OK");
      await c.cmd("RCPT TO:<b@x.test>");
      await c.cmd("DATA");
      assert.match(await c.cmd("x".repeat(60) + "\r\n" + "y".repeat(60) + "\r\n."), /^552 5\.3\.4 /);
      assert.equal(rec.messages.length, 0);
      await c.cmd("MAIL FROM:<a@x.test>");
      await c.cmd("RCPT TO:<b@x.test>");
      await c.cmd("DATA");
      const exact = "z".repeat(98); // 98 + CRLF = 100 octets: at the limit, accepted
      assert.equal(await c.cmd(exact + "\r\n."), "250 2.0.0 Queued as 1");
      assert.equal(rec.messages[0]!.text, exact + "\r\n");
    });
  });

  it("limits recipients with 452 4.5.3", async () => {
    const rec = recorder();
    await withServer({ maxRecipients: 2 }, rec, async (port) => {
      const c = await Client.connect(port);
      await c.ehlo();
      await c.cmd("MAIL FROM:<a@x.test>");
      assert.equal(await c.cmd("RCPT TO:<r1@x.test>"), "250 2.1.5 Recipient OK");
      assert.equal(await c.cmd("RCPT TO:<r2@x.test>"), "250 2.1.5 Recipient OK");
      assert.equal(await c.cmd("RCPT TO:<r3@x.test>"), "452 4.5.3 Too many recipients");
      await c.cmd("DATA");
      await c.cmd("x\r\n.");
      assert.deepEqual(rec.messages[0]!.envelope.recipients.map((r) => r.mailbox.local), ["r1", "r2"]);
    });
  });

  it("answers 503 5.5.1 for commands out of sequence", async () => {
    await withServer({}, recorder(), async (port) => {
      const c = await Client.connect(port);
      await c.reply();
      assert.equal(await c.cmd("MAIL FROM:<a@x.test>"), "503 5.5.1 Send EHLO or HELO first");
      assert.equal(await c.cmd("HELO client.test"), "250 mx.test");
      assert.equal(await c.cmd("RCPT TO:<b@x.test>"), "503 5.5.1 Send MAIL first");
      assert.equal(await c.cmd("DATA"), "503 5.5.1 Send MAIL first");
      await c.cmd("MAIL FROM:<a@x.test>");
      assert.equal(await c.cmd("MAIL FROM:<a@x.test>"), "503 5.5.1 Nested MAIL command");
      assert.equal(await c.cmd("DATA"), "503 5.5.1 Send RCPT first");
      assert.equal(await c.cmd("RSET"), "250 2.0.0 OK");
      assert.equal(await c.cmd("RCPT TO:<b@x.test>"), "503 5.5.1 Send MAIL first");
    });
  });

  it("answers syntax errors, unknown commands and unknown parameters", async () => {
    await withServer({}, recorder(), async (port) => {
      const c = await Client.connect(port);
      await c.ehlo();
      assert.equal(await c.cmd("FROB"), "500 5.5.1 Command unrecognized");
      assert.match(await c.cmd("MAIL FROM:a@x.test"), /^501 5\.1\.7 /);
      assert.match(await c.cmd("MAIL TO:<a@x.test>"), /^501 5\.5\.2 /);
      assert.equal(await c.cmd("MAIL FROM:<a@x.test> FOO=bar"), "555 5.5.4 unsupported parameter FOO");
      assert.equal(await c.cmd("MAIL FROM:<a@x.test>"), "250 2.1.0 Sender OK");
      assert.equal(await c.cmd("RCPT TO:<b@x.test> XYZ"), "555 5.5.4 unsupported parameter XYZ");
      assert.match(await c.cmd("RCPT TO:<>"), /^501 5\.1\.3 /);
      assert.match(await c.cmd("RCPT TO:<b@-bad-.test>"), /^501 5\.1\.3 /);
      assert.equal(
        await c.cmd("VRFY someone"),
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
      );
      assert.match(await c.cmd("HELP"), /^214 2\.0\.0 /);
      assert.match(await c.cmd("X".repeat(600)), /^500 5\.5\.2 Line too long$/);
      assert.equal(await c.cmd("NOOP"), "250 2.0.0 OK");
    });
  });

  it("survives a client that disconnects in the middle of DATA", async () => {
    const rec = recorder();
    await withServer({}, rec, async (port) => {
      for (const abort of ["destroy", "reset"] as const) {
        const c = await Client.connect(port);
        await c.ehlo();
        await c.cmd("MAIL FROM:<a@x.test>");
        await c.cmd("RCPT TO:<b@x.test>");
        await c.cmd("DATA");
        c.send("Subject: half\r\n\r\npartial body\r\n");
        if (abort === "reset" && typeof c.socket.resetAndDestroy === "function") c.socket.resetAndDestroy();
        else c.socket.destroy();
      }
      const c = await Client.connect(port);
      await c.ehlo();
      await c.cmd("MAIL FROM:<a@x.test>");
      await c.cmd("RCPT TO:<b@x.test>");
      await c.cmd("DATA");
      assert.equal(await c.cmd("whole\r\n."), "250 2.0.0 Queued as 1");
      assert.deepEqual(rec.messages.map((m) => m.text), ["whole\r\n"]);
    });
  });

  it("closes an idle session with 421 4.4.2", async () => {
    await withServer({ idleTimeoutMs: 30 }, recorder(), async (port) => {
      const c = await Client.connect(port);
      await c.ehlo();
      assert.equal(await c.reply(), "421 4.4.2 mx.test Timeout exceeded, closing channel");
      assert.equal(await c.closed(), "");
    });
  });

  it("answers 451 4.3.0 when a hook throws, without its text", async () => {
    const rec = recorder({
      async onMailFrom() {
        throw new Error("database password is hunter2");
      },
    });
    await withServer({}, rec, async (port) => {
      const c = await Client.connect(port);
      await c.ehlo();
      const r = await c.cmd("MAIL FROM:<a@x.test>");
      assert.equal(r, "451 4.3.0 Internal error; try again later");
      assert.equal(await c.cmd("RCPT TO:<b@x.test>"), "503 5.5.1 Send MAIL first");
    });
  });

  it("refuses a session when onConnect answers >= 400", async () => {
    const rec = recorder({ onConnect: async () => reply(554, "5.7.1", "Go away") });
    await withServer({}, rec, async (port) => {
      const c = await Client.connect(port);
      assert.equal(await c.reply(), "554 5.7.1 Go away");
      await c.closed();
    });
  });

  it("ends sessions with 421 4.3.2 on closeAll and limits connections", async () => {
    const server = await startSmtpServer(
      { host: "127.0.0.1", port: 0 },
      { ...base, maxConnections: 1 },
      recorder().hooks,
    );
    const c = await Client.connect(server.port);
    await c.ehlo();
    const d = await Client.connect(server.port);
    assert.equal(await d.reply(), "421 4.3.2 mx.test Too many connections, try again later");
    await d.closed();
    await server.closeAll();
    assert.equal(await c.reply(), "421 4.3.2 mx.test Service shutting down, closing channel");
    await c.closed();
  });
});
