import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import { reply } from "../../src/core/reply.ts";
import { createSecureContext, type SecureContext } from "../../src/platform/net.ts";
import { type SmtpServerHooks, type SmtpServerOptions, startSmtpServer } from "../../src/smtp/server/index.ts";
import { INBOUND_TLS } from "../../src/tls/policy.ts";
import { selfSignedIdentity } from "../helpers/pki.ts";
import { failOnSessionError } from "../helpers/smtp-server.ts";
import { Wire } from "../helpers/wire.ts";

const plain = (port: number) => new Wire(net.connect({ host: "127.0.0.1", port }));
const secure = (port: number) =>
  new Wire(tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, servername: "localhost" }));

/** The start of a TLS 1.2 ClientHello: a record header and a few handshake bytes, then nothing. */
const PARTIAL_CLIENT_HELLO = new Uint8Array([
  0x16,
  0x03,
  0x01,
  0x02,
  0x00,
  0x01,
  0x00,
  0x01,
  0xfc,
  0x03,
  0x03,
  1,
  2,
  3,
  4,
  5,
  6,
  7,
  8,
]);

describe("SMTP implicit TLS (RFC 8314) and handshake failures", () => {
  let context: SecureContext;
  const seen: { secure: boolean; text: string }[] = [];
  const hooks: SmtpServerHooks = {
    onRcptTo: async () => undefined,
    onData: async (
      s,
      _e,
      m,
    ) => (seen.push({ secure: s.secure, text: new TextDecoder().decode(m) }), reply(250, "2.0.0", "Queued")),
  };
  const start = (o: Partial<SmtpServerOptions> = {}) =>
    startSmtpServer({ host: "127.0.0.1", port: 0 }, {
      hostname: "mx.test",
      maxMessageBytes: 10_000,
      maxRecipients: 5,
      tls: () => context,
      onError: failOnSessionError,
      ...o,
    }, hooks);

  /** A full session works on this listener. */
  async function serves(port: number, tlsFirst: boolean): Promise<void> {
    const w = tlsFirst ? secure(port) : plain(port);
    assert.equal(await w.reply(), "220 mx.test ESMTP");
    assert.match(await w.cmd("EHLO c"), /^250-mx\.test/);
    assert.equal(await w.cmd("QUIT"), "221 2.0.0 mx.test Service closing transmission channel");
  }

  before(() => {
    context = createSecureContext({ ...selfSignedIdentity(), ...INBOUND_TLS });
  });

  it("greets only after the handshake, marks the session secure and offers no STARTTLS", async () => {
    const server = await start({ implicitTls: true });
    try {
      const w = secure(server.port);
      assert.equal(await w.reply(), "220 mx.test ESMTP");
      const ehlo = await w.cmd("EHLO c");
      assert.ok(!ehlo.includes("STARTTLS"));
      assert.equal(await w.cmd("STARTTLS"), "503 5.5.1 TLS already active");
      await w.cmd("MAIL FROM:<a@x.test>");
      await w.cmd("RCPT TO:<b@x.test>");
      await w.cmd("DATA");
      assert.equal(await w.cmd("over tls\r\n."), "250 2.0.0 Queued");
      assert.deepEqual(seen.at(-1), { secure: true, text: "over tls\r\n" });
      // A plaintext client gets no banner, only a closed connection.
      const p = plain(server.port);
      p.socket.write("EHLO plain\r\n");
      assert.equal(await p.reply(), "");
      await serves(server.port, true);
    } finally {
      await server.closeAll();
    }
  });

  it("survives a reset in the middle of an implicit-TLS handshake", async () => {
    const server = await start({ implicitTls: true });
    try {
      for (const abort of ["destroy", "reset"] as const) {
        const socket = net.connect({ host: "127.0.0.1", port: server.port });
        await new Promise<void>((r) => socket.once("connect", () => r()));
        socket.on("error", () => {});
        await new Promise<void>((r) => socket.write(PARTIAL_CLIENT_HELLO, () => r()));
        if (abort === "reset" && typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
        else socket.destroy();
      }
      await serves(server.port, true);
    } finally {
      await server.closeAll();
    }
  });

  it("closes a connection whose handshake never finishes, and closeAll does not wait for one", async () => {
    const server = await start({ implicitTls: true, tlsHandshakeTimeoutMs: 20 });
    const silent = plain(server.port);
    assert.equal(await silent.reply(), "", "closed by the server after the handshake timeout");
    await serves(server.port, true);
    await server.closeAll();
    const slow = await start({ implicitTls: true });
    const stuck = plain(slow.port);
    await new Promise<void>((r) => stuck.socket.once("connect", () => r()));
    stuck.socket.write(PARTIAL_CLIENT_HELLO);
    await slow.closeAll(); // would wait out the 30 s default handshake timeout otherwise
    assert.equal(await stuck.reply(), "");
  });

  it("survives a reset in the middle of a STARTTLS handshake", async () => {
    const server = await start();
    try {
      const w = plain(server.port);
      await w.reply();
      await w.cmd("EHLO c");
      assert.equal(await w.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
      await new Promise<void>((r) => w.socket.write(PARTIAL_CLIENT_HELLO, () => r()));
      w.socket.destroy();
      await serves(server.port, false);
      const silent = await start({ tlsHandshakeTimeoutMs: 20 });
      const s = plain(silent.port);
      await s.reply();
      assert.equal(await s.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
      assert.equal(await s.reply(), "", "a STARTTLS handshake that never comes ends the session");
      await silent.closeAll();
    } finally {
      await server.closeAll();
    }
  });
});
