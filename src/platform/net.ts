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

/** Server side of STARTTLS (RFC 3207): wrap an accepted socket and wait for the handshake. */
export function upgradeToTlsServer(socket: net.Socket, secureContext: tls.SecureContext, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new Error("TLS handshake timed out"));
    }, timeoutMs);
    secure.once("secure", () => {
      clearTimeout(timer);
      secure.off("error", onError);
      resolve(secure);
    });
    const onError = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    secure.once("error", onError);
  });
}

export interface ClientTlsOptions {
  readonly servername?: string;
  /** Verify the certificate chain and name; opportunistic TLS does not. */
  readonly verify: boolean;
  readonly timeoutMs: number;
}

/** Client side of STARTTLS. */
export function upgradeToTlsClient(socket: net.Socket, options: ClientTlsOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      servername: options.servername && net.isIP(options.servername) === 0 ? options.servername : undefined,
      rejectUnauthorized: options.verify,
      minVersion: "TLSv1.2",
    });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new Error("TLS handshake timed out"));
    }, options.timeoutMs);
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      secure.off("error", onError);
      resolve(secure);
    });
    const onError = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    secure.once("error", onError);
  });
}
