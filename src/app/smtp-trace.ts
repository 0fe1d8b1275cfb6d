import { isIP } from "node:net";
import type { Clock } from "../core/clock.ts";
import { newId } from "../core/id.ts";
import type { Logger } from "../core/log.ts";
import type { TargetHost } from "../delivery/route.ts";
import type { Transcript, TranscriptSource } from "../smtp/protocol/index.ts";
import type { SessionInfo } from "../smtp/server/index.ts";

/** What an operator traces: inbound sessions from one client address, or outbound sessions to one destination. */
export type TraceTarget =
  | { readonly client: string; readonly destination?: undefined }
  | { readonly destination: string; readonly client?: undefined };

export interface ActiveTrace {
  readonly target: TraceTarget;
  readonly until: number;
}

/** "::ffff:127.0.0.1" is 127.0.0.1: the form a dual-stack listener reports IPv4 clients in. */
function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return (mapped ? mapped[1]! : address).toLowerCase();
}

/** The client address an operator typed, in the form sessions are matched in; undefined when it is no IP address. */
export function traceClient(address: string): string | undefined {
  const trimmed = address.trim();
  return isIP(trimmed) === 0 ? undefined : plainAddress(trimmed);
}

/**
 * SMTP session traces switched on and off at run time (POST/DELETE
 * /v1/trace), Postfix's debug_peer_list without the restart. An inbound
 * session that starts while its client's trace is on, and every outbound
 * connection of a traced destination while the trace is on (pooled ones
 * included), logs each command and reply at `info` with its session id,
 * until it ends or the trace ends (switched off, or its time is up). The
 * protocol code hands over no AUTH response and no message content.
 */
export class SmtpTrace {
  readonly #clients = new Map<string, number>();
  readonly #destinations = new Map<string, number>();

  constructor(private readonly clock: Clock, private readonly log: Logger) {}

  /** `target.client` must be an address traceClient accepts; `destination` a destination's name. */
  start(target: TraceTarget, until: number): ActiveTrace {
    if (target.client !== undefined) this.#clients.set(plainAddress(target.client), until);
    else this.#destinations.set(target.destination, until);
    this.log("info", "smtp trace on", { ...target, until: new Date(until).toISOString() });
    return { target, until };
  }

  /** Whether that trace was on. */
  stop(target: TraceTarget): boolean {
    const stopped = target.client !== undefined
      ? this.#clients.delete(plainAddress(target.client))
      : this.#destinations.delete(target.destination);
    if (stopped) this.log("info", "smtp trace off", { ...target });
    return stopped;
  }

  list(): ActiveTrace[] {
    const now = this.clock.now();
    return [
      ...[...this.#clients].map(([client, until]) => ({ target: { client }, until })),
      ...[...this.#destinations].map(([destination, until]) => ({ target: { destination }, until })),
    ].filter((trace) => trace.until > now);
  }

  /** The SMTP server's transcript hook: a session from a traced client address. */
  inbound(session: SessionInfo): Transcript | undefined {
    const client = plainAddress(session.remoteAddress);
    if (!this.#on(this.#clients, client)) return undefined;
    return (dir, line) => {
      if (this.#on(this.#clients, client)) this.log("info", "smtp trace", { session: session.id, client, dir, line });
    };
  }

  /** The delivery planner's: a connection to a host of the destination, traced while its trace is on. */
  outbound(destination: string, host: TargetHost, address: string): TranscriptSource {
    let transcript: Transcript | undefined;
    return () => {
      if (!this.#on(this.#destinations, destination)) return undefined;
      if (!transcript) {
        const fields = { session: newId(this.clock.now()), destination, mx: host.name, mx_ip: address };
        transcript = (dir, line) => this.log("info", "smtp trace", { ...fields, dir, line });
      }
      return transcript;
    };
  }

  /** Whether the trace of `key` is on now; one whose time is up is forgotten. */
  #on(traces: Map<string, number>, key: string): boolean {
    if (traces.size === 0) return false;
    const until = traces.get(key);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    traces.delete(key);
    this.log("info", "smtp trace ended", traces === this.#clients ? { client: key } : { destination: key });
    return false;
  }
}
