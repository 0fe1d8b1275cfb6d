/**
 * Where a milter listens, written as Postfix's smtpd_milters writes it:
 * `inet:host:port` (an IPv6 host in brackets, `inet:[::1]:11332`) or
 * `unix:/path/to/socket`; and the connection to it, negotiated.
 */
import { connectTcp, connectUnix } from "../platform/net.ts";
import { MilterConnectionError } from "./errors.ts";
import { MilterSession, type MilterSessionOptions } from "./session.ts";

export type MilterEndpoint =
  | { readonly kind: "inet"; readonly host: string; readonly port: number }
  | { readonly kind: "unix"; readonly path: string };

/** The endpoint `text` names; a RangeError quoting it when it names none. */
export function parseMilterEndpoint(text: string): MilterEndpoint {
  const unix = /^unix:(\/.*)$/.exec(text);
  if (unix) return { kind: "unix", path: unix[1]! };
  const inet = /^inet:(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = Number(inet?.[3]);
  if (!inet || port < 1 || port > 65535) {
    throw new RangeError(`not a milter address (inet:host:port or unix:/path): ${JSON.stringify(text)}`);
  }
  return { kind: "inet", host: (inet[1] ?? inet[2])!, port };
}

export function formatMilterEndpoint(endpoint: MilterEndpoint): string {
  if (endpoint.kind === "unix") return `unix:${endpoint.path}`;
  return `inet:${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
}

export interface OpenMilterOptions extends MilterSessionOptions {
  /** How long connecting may take (Postfix milter_connect_timeout: 30 s). */
  readonly connectTimeoutMs?: number;
}

/** Connect to the milter and negotiate; a MilterError when either fails. */
export async function openMilter(endpoint: MilterEndpoint, options: OpenMilterOptions = {}): Promise<MilterSession> {
  const timeoutMs = options.connectTimeoutMs ?? 30_000;
  let socket;
  try {
    socket = endpoint.kind === "unix"
      ? await connectUnix(endpoint.path, timeoutMs)
      : await connectTcp({ host: endpoint.host, port: endpoint.port, timeoutMs });
  } catch (error) {
    throw new MilterConnectionError(
      `cannot connect to milter ${formatMilterEndpoint(endpoint)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const session = new MilterSession(socket, options);
  try {
    await session.negotiate();
  } catch (error) {
    await session.close();
    throw error;
  }
  return session;
}
