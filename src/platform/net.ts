import * as net from "node:net";
import * as tls from "node:tls";

/**
 * TCP and TLS through node:net / node:tls: the one socket API that Bun and
 * Deno both implement. Everything above this file sees only these functions.
 */

export type Socket = net.Socket;
export type SecureContext = tls.SecureContext;

export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** Stop accepting; open connections are left to their owners. */
  close(): Promise<void>;
}

export function listenTcp(host: string, port: number, onSocket: (socket: net.Socket) => void): Promise<TcpListener> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ noDelay: true }, onSocket);
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      const address = server.address() as net.AddressInfo;
      resolve({
        host,
        port: address.port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Bind the outgoing connection to this local address (RELAY_SOURCE_IP). */
  readonly localAddress?: string;
  readonly timeoutMs: number;
}

export function connectTcp(options: ConnectOptions): Promise<net.Socket> {
  const socket = net.connect({ host: options.host, port: options.port, localAddress: options.localAddress });
  socket.setNoDelay(true);
  return connected(socket, `${options.host}:${options.port}`, options.timeoutMs);
}

/** A connection to a Unix-domain socket (a milter's unix:/path), within timeoutMs. */
export function connectUnix(path: string, timeoutMs: number): Promise<net.Socket> {
  return connected(net.connect({ path }), path, timeoutMs);
}

/** The socket once it connects; destroyed, with an error naming `what`, when that takes over `timeoutMs`. */
function connected(socket: net.Socket, what: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${what} timed out after ${timeoutMs}ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve(socket);
    });
    const onError = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once("error", onError);
  });
}

/** What a TLS server offers in its handshakes (src/tls/policy.ts says it for the relay's listeners). */
export interface ServerTlsSettings {
  readonly minVersion: "TLSv1.2" | "TLSv1.3";
  /** OpenSSL names of the TLS 1.2 ciphers, most preferred first (TLS 1.3's suites are not configurable here). */
  readonly ciphers: string;
  /** The key-exchange groups, e.g. "X25519:P-256". */
  readonly ecdhCurve: string;
  /** Pick the server's most preferred cipher the client offers, not the client's. */
  readonly honorCipherOrder: boolean;
}

/**
 * A server's certificate and key with the settings its handshakes use.
 * Bun (BoringSSL) applies all of them; Deno's node:tls (rustls) ignores them
 * and offers rustls' fixed set: TLS 1.2 and 1.3, ECDHE with AEAD ciphers only,
 * in the client's order.
 */
export function createSecureContext(
  options: { readonly cert: string | Buffer; readonly key: string | Buffer } & ServerTlsSettings,
): tls.SecureContext {
  return tls.createSecureContext({
    cert: options.cert,
    key: options.key,
    minVersion: options.minVersion,
    ciphers: options.ciphers,
    ecdhCurve: options.ecdhCurve,
    honorCipherOrder: options.honorCipherOrder,
  });
}

/**
 * Server side of STARTTLS (RFC 3207) and of implicit TLS (RFC 8314): wrap an
 * accepted socket and wait for the handshake. Rejects, never throws, when
 * the peer fails, resets or closes mid-handshake, or takes longer than timeoutMs.
 */
export function upgradeToTlsServer(
  socket: net.Socket,
  secureContext: tls.SecureContext,
  timeoutMs: number,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return; // the error listener stays: a later error on a dead socket is ignored
      settled = true;
      clearTimeout(timer);
      secure.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error("TLS handshake timed out")), timeoutMs);
    const onError = (error: Error) => fail(error);
    const onClose = () => fail(new Error("connection closed during the TLS handshake"));
    secure.once("secure", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      secure.off("error", onError);
      secure.off("close", onClose);
      resolve(secure);
    });
    secure.on("error", onError);
    secure.once("close", onClose);
  });
}

export interface ClientTlsOptions {
  readonly servername?: string;
  /** Verify the certificate chain and name; opportunistic TLS does not. */
  readonly verify: boolean;
  readonly timeoutMs: number;
  /**
   * Trust anchors for `verify` and `certificateProblem` instead of the
   * bundled roots (pass `tls.rootCertificates` along with extra ones to add
   * to them, as RELAY_TLS_CA_FILE does).
   */
  readonly ca?: tls.ConnectionOptions["ca"];
}

/** Why a certificate does not verify: an OpenSSL / node:tls code (e.g. CERT_HAS_EXPIRED) and its text. */
export interface CertificateProblem {
  readonly code: string;
  readonly message: string;
}

/**
 * Whether the peer's certificate chains to a trusted root (the `ca` the
 * socket was made with) and is valid for `name` (RFC 6125); undefined when
 * it does. Works on a socket made without `verify` too, so a certificate can
 * be judged without being refused.
 */
export function certificateProblem(secure: tls.TLSSocket, name: string): CertificateProblem | undefined {
  if (!secure.authorized) {
    // A code string on Bun and Deno, an Error on some Node versions.
    const reason = secure.authorizationError as unknown;
    const code = typeof reason === "string"
      ? reason
      : ((reason as { code?: string } | null)?.code ?? "CERT_NOT_TRUSTED");
    return { code, message: reason instanceof Error ? reason.message : `certificate not trusted (${code})` };
  }
  if (name === "") return { code: "CERT_NO_NAME", message: "no name to verify the certificate against" };
  const mismatch = tls.checkServerIdentity(name, secure.getPeerCertificate());
  if (mismatch === undefined) return undefined;
  return { code: (mismatch as { code?: string }).code ?? "ERR_TLS_CERT_ALTNAME_INVALID", message: mismatch.message };
}

/**
 * Client side of STARTTLS. With `verify`, the chain must lead to a trusted
 * root and the certificate must be valid for `servername` (RFC 6125); both
 * are checked again after the handshake, so that no runtime's TLS layer can
 * let an unverified peer through.
 */
export function upgradeToTlsClient(socket: net.Socket, options: ClientTlsOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      servername: options.servername && net.isIP(options.servername) === 0 ? options.servername : undefined,
      rejectUnauthorized: options.verify,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      minVersion: "TLSv1.2",
    });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new Error("TLS handshake timed out"));
    }, options.timeoutMs);
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      secure.off("error", onError);
      const problem = options.verify ? certificateProblem(secure, options.servername ?? "") : undefined;
      if (problem) {
        secure.destroy();
        reject(Object.assign(new Error(`certificate verification failed: ${problem.message}`), { code: problem.code }));
        return;
      }
      resolve(secure);
    });
    const onError = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    secure.once("error", onError);
  });
}
