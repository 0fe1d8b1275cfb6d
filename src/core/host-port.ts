import { isIP } from "node:net";

/** A host (name or address) and a port: listeners, DNS servers, static routes. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** "host:port", "[v6]:port". */
export function parseHostPort(text: string, defaultPort?: number): HostPort | undefined {
  const trimmed = text.trim();
  if (defaultPort !== undefined && isIP(trimmed) === 6) return { host: trimmed, port: defaultPort };
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed) {
    const port = bracketed[2] === undefined ? defaultPort : parsePort(bracketed[2]);
    return port === undefined ? undefined : { host: bracketed[1]!, port };
  }
  const colon = trimmed.lastIndexOf(":");
  if (colon === -1 || trimmed.indexOf(":") !== colon) {
    if (colon !== -1 || defaultPort === undefined || !isHostName(trimmed)) return undefined;
    return { host: trimmed, port: defaultPort };
  }
  const host = trimmed.slice(0, colon);
  const port = parsePort(trimmed.slice(colon + 1));
  return port === undefined || !isHostName(host) ? undefined : { host, port };
}

export function isHostName(text: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text);
}
