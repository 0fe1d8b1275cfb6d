import { reply, formatReply } from "../../core/reply.ts";
import { listenTcp, type Socket } from "../../platform/net.ts";
import { Session } from "./session.ts";
import { resolveOptions, type SmtpServerHooks, type SmtpServerOptions } from "./types.ts";

export interface SmtpServerHandle {
  readonly port: number;
  /** Stop accepting; sessions in progress go on. */
  close(): Promise<void>;
  /** Stop accepting and end every session with "421 4.3.2" (after the command in progress). */
  closeAll(): Promise<void>;
}

/** Listen for SMTP on host:port (port 0 picks a free one). */
export async function startSmtpServer(
  address: { host: string; port: number },
  options: SmtpServerOptions,
  hooks: SmtpServerHooks,
): Promise<SmtpServerHandle> {
  const resolved = resolveOptions(options);
  const sessions = new Set<Session>();
  let accepting = true;

  const onSocket = (socket: Socket): void => {
    socket.on("error", () => socket.destroy()); // a reset before the session takes over
    if (!accepting) {
      socket.destroy();
      return;
    }
    if (resolved.maxConnections !== undefined && sessions.size >= resolved.maxConnections) {
      socket.end(formatReply(reply(421, "4.7.0", `${resolved.hostname} Too many connections, try again later`)));
      setTimeout(() => socket.destroy(), 5_000).unref?.();
      return;
    }
    const session = new Session(socket, resolved, hooks);
    sessions.add(session);
    void session.closed.then(() => sessions.delete(session));
    session.start().catch(() => session.end());
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
    async closeAll() {
      const stopped = stop();
      for (const session of sessions) session.shutdown();
      await Promise.all([stopped, ...[...sessions].map((s) => s.closed)]);
    },
  };
}
