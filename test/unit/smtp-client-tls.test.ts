import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import { SmtpClientError, SmtpClientSession } from "../../src/smtp/client/index.ts";
import { type Destination, type DestinationOptions, startDestination } from "../fixtures/smtp-destination.ts";
import { type Identity, selfSignedIdentity } from "../helpers/pki.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const MESSAGE = "Subject: tls\r\n\r\nover TLS\r\n";

let certificate: Identity;
const started: Destination[] = [];

before(() => {
  certificate = selfSignedIdentity();
});

after(async () => {
  await Promise.all(started.map((d) => d.close()));
});

async function destination(options: DestinationOptions): Promise<Destination> {
  const d = await startDestination(options);
  started.push(d);
  return d;
}

async function rejection(promise: Promise<unknown>): Promise<SmtpClientError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof SmtpClientError, `expected SmtpClientError, got ${String(error)}`);
  return error;
}

describe("STARTTLS (RFC 3207)", () => {
  test("opportunistic: upgrades, re-issues EHLO, records the TLS version, delivers", async () => {
    const d = await destination({ starttls: certificate });
    const session = await SmtpClientSession.open({
      host: d.host,
      port: d.port,
      heloName: "relay.test",
      tls: "opportunistic",
      servername: "localhost",
    });
    assert.match(session.tls?.version ?? "", /^TLSv1\.[23]$/);
    assert.ok(session.tls?.cipher);
    assert.ok(!session.extensions.has("STARTTLS"), "extensions come from the EHLO after TLS");
    const result = await session.send(
      { mailFrom: "a@sender.test", recipients: ["b@dest.test", "nouser@dest.test"] },
      bytes(MESSAGE),
    );
    await session.quit();
    assert.deepEqual(result.recipients.map((r) => r.reply.code), [250, 550]);
    assert.equal(result.data?.code, 250);
    assert.equal(d.messages[0]?.tls, true);
    assert.equal(d.messages[0]?.data, MESSAGE);
    assert.deepEqual(d.sessions[0]?.commands.filter((c) => /^(EHLO|STARTTLS)/.test(c)), [
      "EHLO relay.test",
      "STARTTLS",
      "EHLO relay.test",
    ]);
  });

  test("tls: none ignores an offered STARTTLS", async () => {
    const d = await destination({ starttls: certificate });
    const session = await SmtpClientSession.open({ host: d.host, port: d.port, heloName: "relay.test", tls: "none" });
    assert.equal(session.tls, undefined);
    await session.send({ mailFrom: "a@sender.test", recipients: ["b@dest.test"] }, bytes(MESSAGE));
    await session.quit();
    assert.equal(d.messages[0]?.tls, false);
  });

  test("a server that breaks the session after its 220 to STARTTLS fails with kind tls, however the bytes arrive", async () => {
    const endings = {
      "garbage in the same write as the 220": (socket: net.Socket) =>
        socket.end("220 2.0.0 go ahead\r\nthis is not a TLS handshake\r\n"),
      "a 220, then garbage": (socket: net.Socket) => {
        socket.write("220 2.0.0 go ahead\r\n");
        setTimeout(() => socket.end("this is not a TLS handshake\r\n"), 20);
      },
      "a 220, then a close": (socket: net.Socket) => socket.end("220 2.0.0 go ahead\r\n"),
      "a close instead of an answer": (socket: net.Socket) => socket.end(),
    };
    for (const [name, end] of Object.entries(endings)) {
      const server = net.createServer((socket) => {
        socket.on("error", () => socket.destroy());
        socket.write("220 broken.test ESMTP\r\n");
        let buffered = "";
        socket.on("data", (chunk) => {
          buffered += chunk.toString("latin1");
          if (/^EHLO /m.test(buffered) && !/STARTTLS/.test(buffered)) {
            buffered = "";
            socket.write("250-broken.test\r\n250 STARTTLS\r\n");
          } else if (/^STARTTLS\r\n/m.test(buffered)) end(socket);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const port = (server.address() as net.AddressInfo).port;
        const error = await rejection(
          SmtpClientSession.open({ host: "127.0.0.1", port, heloName: "relay.test", tls: "opportunistic" }),
        );
        assert.equal(error.kind, "tls", `${name}: ${error.message}`);
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    }
  });

  test("tls: required fails with kind tls when STARTTLS is not offered", async () => {
    const d = await destination({});
    const error = await rejection(
      SmtpClientSession.open({ host: d.host, port: d.port, heloName: "relay.test", tls: "required" }),
    );
    assert.equal(error.kind, "tls");
    assert.equal(error.stage, "starttls");
  });

  test("a certificate that does not verify fails the handshake with kind tls when tlsVerify is set", async () => {
    const d = await destination({ starttls: certificate });
    const error = await rejection(SmtpClientSession.open({
      host: d.host,
      port: d.port,
      heloName: "relay.test",
      tls: "required",
      servername: "localhost",
      tlsVerify: true,
    }));
    assert.equal(error.kind, "tls");
    assert.equal(error.stage, "tls");
    assert.equal(d.messages.length, 0);
  });
});
