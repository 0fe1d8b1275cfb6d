import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { listenTcp, type TcpListener, upgradeToTlsServer } from "../../src/platform/net.ts";
import { loadCertificate } from "../../src/tls/load.ts";
import { generateSelfSigned } from "../../src/tls/self-signed.ts";
import { NOT_INSTALLED, peerMissing, runPeer } from "../helpers/peers.ts";

const OPENSSL = "/usr/bin/openssl";
const opensslMissing = peerMissing(OPENSSL, "openssl", !existsSync(OPENSSL) && NOT_INSTALLED);

/**
 * What the relay's TLS servers accept (src/tls/policy.ts): a client that
 * offers only what Mozilla's "intermediate" profile leaves out gets no
 * session. The client is openssl s_client, which offers exactly what it is
 * told to on either runtime. test/e2e/testssl.test.ts audits the whole server.
 */
describe("inbound TLS policy", () => {
  let listener: TcpListener;
  before(async () => {
    if (opensslMissing) return; // every test below is skipped, with the reason
    // The certificate the relay makes for itself when it is given none (RSA).
    const { cert, key } = await generateSelfSigned("relay.test", Date.now());
    const { context } = loadCertificate(cert, key, { certFile: "cert.pem", keyFile: "key.pem" });
    listener = await listenTcp("127.0.0.1", 0, (socket) => {
      upgradeToTlsServer(socket, context, 10_000).then((secure) => secure.end(), () => undefined);
    });
  });
  after(async () => {
    await listener?.close();
  });

  /** "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256": what a handshake with these s_client options ends in; "refused" if none. */
  async function handshake(...options: string[]): Promise<string> {
    const run = await runPeer(OPENSSL, ["s_client", "-brief", "-connect", `127.0.0.1:${listener.port}`, ...options]);
    const protocol = /^Protocol version: (\S+)$/m.exec(run.stderr)?.[1];
    const cipher = /^Ciphersuite: (\S+)$/m.exec(run.stderr)?.[1];
    return protocol && cipher ? `${protocol} ${cipher}` : "refused";
  }

  it("speaks TLS 1.3, and TLS 1.2 with ECDHE and an AEAD cipher", { skip: opensslMissing }, async () => {
    assert.match(await handshake("-tls1_3"), /^TLSv1\.3 TLS_/);
    const ciphers = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"];
    for (const cipher of ciphers) assert.equal(await handshake("-tls1_2", "-cipher", cipher), `TLSv1.2 ${cipher}`);
    for (const group of ["X25519", "P-256", "P-384"]) assert.match(await handshake("-groups", group), /^TLSv1\.3 /);
  });

  it(
    "refuses TLS 1.1, CBC ciphers, key transport without forward secrecy and other groups",
    { skip: opensslMissing },
    async () => {
      const refused = [
        ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
        ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA256"],
        ["-tls1_2", "-cipher", "AES128-GCM-SHA256:AES256-GCM-SHA384"],
        ["-groups", "P-521:ffdhe2048"],
      ];
      for (const options of refused) assert.equal(await handshake(...options), "refused", options.join(" "));
    },
  );

  it(
    "picks its own most preferred TLS 1.2 cipher, not the client's",
    // Deno's node:tls (rustls) takes no cipher order: it follows the client's (src/platform/net.ts).
    { skip: opensslMissing ?? ("Deno" in globalThis && "Deno's node:tls follows the client's cipher order") },
    async () => {
      const ciphers = "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256";
      assert.equal(await handshake("-tls1_2", "-cipher", ciphers), "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256");
    },
  );
});
