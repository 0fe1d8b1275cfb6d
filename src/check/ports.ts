import type { HostPort } from "../core/host-port.ts";
import { listenTcp, type TcpListener } from "../platform/net.ts";
import { type CheckResult, errorReason, fail, pass } from "./result.ts";

export interface Listener extends HostPort {
  /** The variable that names it: RELAY_SMTP_LISTEN. */
  readonly variable: string;
}

/**
 * Each listen address can be bound: bound and closed again at once, all
 * held until the last so that two of the configuration on one port show
 * up. A port already taken is fine when the taker is this relay, serving:
 * `runningRelay` says whether one serves from this data directory.
 */
export async function checkPorts(
  listeners: readonly Listener[],
  runningRelay: () => Promise<boolean>,
): Promise<CheckResult[]> {
  const held: { listener: Listener; server: TcpListener }[] = [];
  const results: CheckResult[] = [];
  try {
    for (const listener of listeners) {
      const what = `${listener.variable} ${listener.host}:${listener.port}`;
      try {
        held.push({ listener, server: await listenTcp(listener.host, listener.port, (socket) => socket.destroy()) });
        results.push(pass(what, "can listen"));
      } catch (error) {
        results.push(await cannotListen(what, listener, errorReason(error), held, runningRelay));
      }
    }
  } finally {
    await Promise.all(held.map(({ server }) => server.close()));
  }
  return results;
}

async function cannotListen(
  what: string,
  listener: Listener,
  reason: string,
  held: readonly { listener: Listener }[],
  runningRelay: () => Promise<boolean>,
): Promise<CheckResult> {
  if (reason === "EADDRINUSE") {
    const twin = held.find((h) => h.listener.port === listener.port)?.listener;
    if (twin) {
      return fail(
        what,
        `the same port as ${twin.variable} ${twin.host}:${twin.port}`,
        "give each listener its own port",
      );
    }
    if (await runningRelay()) return pass(what, "in use by this relay, which is serving from RELAY_DATA_DIR");
    return fail(
      what,
      "in use by another process (EADDRINUSE)",
      `stop it (ss -ltnp shows it), or change ${listener.variable}`,
    );
  }
  if (reason === "EACCES") {
    return fail(
      what,
      `port ${listener.port} needs privileges (EACCES)`,
      "grant CAP_NET_BIND_SERVICE (the systemd unit's AmbientCapabilities), or use a port above 1023",
    );
  }
  if (reason === "EADDRNOTAVAIL") {
    return fail(what, `${listener.host} is not an address of this host (EADDRNOTAVAIL)`, `change ${listener.variable}`);
  }
  return fail(what, `cannot listen (${reason})`, `change ${listener.variable}`);
}
