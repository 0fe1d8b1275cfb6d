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
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.host, port: options.port, localAddress: options.localAddress });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${options.host}:${options.port} timed out after ${options.timeoutMs}ms`));
    }, options.timeoutMs);
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

export function createSecureContext(options: { cert: string | Buffer; key: string | Buffer }): tls.SecureContext {
  return tls.createSecureContext({ cert: options.cert, key: options.key, minVersion: "TLSv1.2" });
}

/**
 * Server side of STARTTLS (RFC 3207) and of implicit TLS (RFC 8314): wrap an
 * accepted socket and wait for the handshake. Rejects, never throws, when
 * the peer fails, resets or closes mid-handshake, or takes longer than timeoutMs.
 */
export function upgradeToTlsServer(socket: net.Socket, secureContext: tls.SecureContext, timeoutMs: number): Promise<tls.TLSSocket> {
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
   * Trust anchors for `verify` instead of the bundled roots (pass
   * `tls.rootCertificates` along with extra ones to add to them, as
   * RELAY_TLS_CA_FILE does).
   */
  readonly ca?: tls.ConnectionOptions["ca"];
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
      if (options.verify) {
        const name = options.servername ?? "";
        const problem = !secure.authorized
          ? (secure.authorizationError ?? new Error("certificate not trusted"))
          : name === ""
            ? new Error("no name to verify the certificate against")
            : tls.checkServerIdentity(name, secure.getPeerCertificate());
        if (problem !== undefined && problem !== null) {
          secure.destroy();
          const error = problem instanceof Error ? problem : new Error(String(problem));
          reject(Object.assign(new Error(`certificate verification failed: ${error.message}`), { code: (error as { code?: string }).code ?? "CERT_VERIFY_FAILED" }));
          return;
        }
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
