import { formatReply, type Reply } from "../../core/reply.ts";
import { listenTcp, type Socket, upgradeToTlsServer } from "../../platform/net.ts";
import { Admission } from "./admission.ts";
import { newSessionInfo } from "./commands.ts";
import { Session } from "./session.ts";
import { resolveOptions, type SessionInfo, type SmtpServerHooks, type SmtpServerOptions } from "./types.ts";

export interface SmtpServerHandle {
  readonly port: number;
  /** Stop accepting; sessions in progress go on. */
  close(): Promise<void>;
  /** Stop accepting and end every session with "421 4.3.2" (after the command in progress). */
  closeAll(): Promise<void>;
  /** Connections since the start: open now (a TLS handshake in progress included), admitted, and refused over a limit. */
  connections(): ConnectionCounts;
}

export interface ConnectionCounts {
  readonly open: number;
  readonly admitted: number;
  readonly refused: number;
}

/**
 * Listen for SMTP on host:port (port 0 picks a free one). With implicitTls
 * (RFC 8314) each connection is a TLS handshake first; one that fails or
 * times out only closes its own socket.
 */
export async function startSmtpServer(
  address: { host: string; port: number },
  options: SmtpServerOptions,
  hooks: SmtpServerHooks,
): Promise<SmtpServerHandle> {
  const resolved = resolveOptions(options);
  const admission = resolved.admission ?? new Admission(
    resolved.hostname,
    resolved.maxConnections,
    resolved.maxConnectionsPerIp,
    resolved.perIpLimitExempt,
    resolved.reservedConnections,
  );
  const sessions = new Set<Session>();
  /** Sockets still in their implicit-TLS handshake. */
  const handshaking = new Set<Socket>();
  let accepting = true;
  let admittedCount = 0;
  /** This listener's own connections (the admission may count other listeners' too). */
  let openCount = 0;
  let refusedCount = 0;

  const run = (socket: Socket, info: SessionInfo, release: () => void): void => {
    const session = new Session(socket, resolved, hooks, info);
    sessions.add(session);
    void session.closed.then(() => {
      sessions.delete(session);
      release();
    });
    session.start().catch((error) => {
      resolved.onError(error, info);
      session.end();
    });
  };

  const onSocket = (socket: Socket): void => {
    socket.on("error", () => socket.destroy()); // a reset before the session takes over
    if (!accepting) return void socket.destroy();
    const info = newSessionInfo(socket);
    const admitted = admission.admit(info.remoteAddress);
    if (typeof admitted !== "function") {
      refusedCount += 1;
      return refuse(socket, admitted, resolved.implicitTls);
    }
    admittedCount += 1;
    openCount += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      openCount -= 1;
      admitted();
    };
    socket.once("close", release);
    if (!resolved.implicitTls) return run(socket, info, release);
    const context = resolved.tls?.();
    if (!context) return void socket.destroy();
    handshaking.add(socket);
    upgradeToTlsServer(socket, context, resolved.tlsHandshakeTimeoutMs).then(
      (secure) => {
        handshaking.delete(socket);
        if (!accepting || socket.destroyed) return void secure.destroy();
        info.secure = true;
        run(secure, info, release);
      },
      () => {
        // A failed, stalled or reset handshake is the client's doing: nothing to report.
        handshaking.delete(socket);
        socket.destroy();
      },
    );
  };

  const listener = await listenTcp(address.host, address.port, onSocket);
  // The listener stops accepting at once; its promise settles when the last connection is gone.
  let drained: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    accepting = false;
    drained ??= listener.close();
    return drained;
  };
  return {
    port: listener.port,
    close: async () => void stop(),
    connections: () => ({ open: openCount, admitted: admittedCount, refused: refusedCount }),
    async closeAll() {
      const stopped = stop();
      for (const socket of handshaking) socket.destroy();
      for (const session of sessions) session.shutdown();
      await Promise.all([stopped, ...[...sessions].map((s) => s.closed)]);
    },
  };
}

/**
 * Over a limit: 421 and close (RFC 5321 3.1). On implicit TLS there is no
 * plaintext to say it in. The descriptor is given back as soon as the reply
 * is with the kernel (which still sends it, then FIN): a flood of refused
 * clients that never close must not hold the descriptors the limit keeps free.
 */
function refuse(socket: Socket, last: Reply, implicitTls: boolean): void {
  if (implicitTls) return void socket.destroy();
  socket.write(formatReply(last), () => socket.destroy());
  setTimeout(() => socket.destroy(), 5_000).unref?.();
}
