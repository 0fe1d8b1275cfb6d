import type { ServerTlsSettings } from "../platform/net.ts";

/**
 * What the relay's own TLS servers (SMTP STARTTLS and implicit TLS) offer:
 * Mozilla's "intermediate" server profile, as RFC 9325 (BCP 195) recommends.
 * TLS 1.2 at least (RFC 8996 retires 1.0 and 1.1); for TLS 1.2 only ECDHE
 * key exchange (forward secrecy) with AEAD ciphers, in the server's order;
 * TLS 1.3's suites are all AEAD with forward secrecy. Mozilla lists
 * DHE-RSA too; it is left out (BoringSSL, Bun's TLS library, has no DHE).
 * Neither runtime's TLS library compresses (CRIME) or lets a client
 * renegotiate on a server.
 *
 * Outbound delivery is not held to this: opportunistic STARTTLS to any MX
 * host (RFC 7435) is better than plaintext with an old server.
 */
export const INBOUND_TLS: ServerTlsSettings = {
  minVersion: "TLSv1.2",
  ciphers: [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ].join(":"),
  ecdhCurve: "X25519:P-256:P-384",
  honorCipherOrder: true,
};
