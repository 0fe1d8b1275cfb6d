import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import { reply } from "../../src/core/reply.ts";
import { createSecureContext, type SecureContext } from "../../src/platform/net.ts";
import { type SmtpServerHandle, startSmtpServer } from "../../src/smtp/server/index.ts";
import { INBOUND_TLS } from "../../src/tls/policy.ts";
import { selfSignedIdentity } from "../helpers/pki.ts";
import { failOnSessionError } from "../helpers/smtp-server.ts";

/** Reads whole SMTP replies from whichever socket is current (plain, then TLS). */
class Reader {
  buffer = "";
  closed = false;
  #wake?: () => void;
  attach(socket: net.Socket): void {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.buffer += d;
      this.#wake?.();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.#wake?.();
    });
  }
  async reply(): Promise<string> {
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m[0].length);
        return m[0].trimEnd();
      }
      if (this.closed) return "";
      await new Promise<void>((r) => (this.#wake = r));
    }
  }
}

describe("SMTP STARTTLS (RFC 3207)", () => {
  let context: SecureContext;
  let server: SmtpServerHandle;
  const seen: { secure: boolean; helo?: string; text: string }[] = [];

  before(async () => {
    context = createSecureContext({ ...selfSignedIdentity(), ...INBOUND_TLS });
    server = await startSmtpServer(
      { host: "127.0.0.1", port: 0 },
      {
        hostname: "mx.test",
        maxMessageBytes: 10_000,
        maxRecipients: 10,
        tls: () => context,
        onError: failOnSessionError,
      },
      {
        onRcptTo: async () => undefined,
        onData: async (s, _e, message) => {
          seen.push({ secure: s.secure, helo: s.heloName, text: new TextDecoder().decode(message) });
          return reply(250, "2.0.0", "OK queued");
        },
      },
    );
  });

  after(async () => {
    await server.closeAll();
  });

  it("upgrades, discards pipelined plaintext and resets the session", async () => {
    const plain = await new Promise<net.Socket>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port: server.port }, () => resolve(s));
    });
    const r = new Reader();
    r.attach(plain);
    assert.equal(await r.reply(), "220 mx.test ESMTP");
    plain.write("EHLO plain.test\r\n");
    assert.ok((await r.reply()).split("\r\n").includes("250 STARTTLS"));
    // A command injected after STARTTLS in the same packet must be discarded (CVE-2011-0411 class).
    plain.write("MAIL FROM:<before@x.test>\r\nSTARTTLS\r\nRCPT TO:<injected@x.test>\r\n");
    assert.equal(await r.reply(), "250 2.1.0 Sender OK");
    assert.equal(await r.reply(), "220 2.0.0 Ready to start TLS");
    assert.equal(r.buffer, "");
    plain.removeAllListeners("data");
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false, servername: "localhost" });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    const s = new Reader();
    s.attach(secure);
    const send = (line: string) => secure.write(line + "\r\n");
    // Everything learnt before TLS is forgotten: no EHLO, no transaction, no injected RCPT.
    send("MAIL FROM:<a@x.test>");
    assert.equal(await s.reply(), "503 5.5.1 Send EHLO or HELO first");
    send("EHLO secure.test");
    const ehlo = await s.reply();
    assert.ok(!ehlo.includes("STARTTLS"), "STARTTLS is not offered twice");
    send("STARTTLS");
    assert.equal(await s.reply(), "503 5.5.1 TLS already active");
    send("RCPT TO:<b@x.test>");
    assert.equal(await s.reply(), "503 5.5.1 Send MAIL first");
    send("MAIL FROM:<a@x.test>");
    send("RCPT TO:<b@x.test>");
    send("DATA");
    assert.deepEqual([await s.reply(), await s.reply(), await s.reply()].map((x) => x.slice(0, 3)), [
      "250",
      "250",
      "354",
    ]);
    send("over tls\r\n.");
    assert.equal(await s.reply(), "250 2.0.0 OK queued");
    assert.deepEqual(seen, [{ secure: true, helo: "secure.test", text: "over tls\r\n" }]);
    send("QUIT");
    assert.match(await s.reply(), /^221 /);
    secure.end();
  });

  it("answers 454 when no certificate is available", async () => {
    const bare = await startSmtpServer(
      { host: "127.0.0.1", port: 0 },
      {
        hostname: "mx.test",
        maxMessageBytes: 100,
        maxRecipients: 1,
        tls: () => undefined,
        onError: failOnSessionError,
      },
      { onRcptTo: async () => undefined, onData: async () => reply(250, "2.0.0", "OK") },
    );
    const socket = net.connect({ host: "127.0.0.1", port: bare.port });
    const r = new Reader();
    r.attach(socket);
    await r.reply();
    socket.write("EHLO c\r\nSTARTTLS\r\n");
    assert.ok(!(await r.reply()).includes("STARTTLS"));
    assert.equal(await r.reply(), "454 4.7.0 TLS not available");
    socket.destroy();
    await bare.closeAll();
  });
});
