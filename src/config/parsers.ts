import { isIP } from "node:net";
import { canonicalDomain, literalAddress } from "../core/address.ts";
import { parseDuration } from "../core/duration.ts";
import { parseCidr, type Cidr } from "../core/cidr.ts";

/** Text parsers for configuration values. Each returns undefined for text it cannot read. */

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

function isHostName(text: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text);
}

export function parseList<T>(text: string, item: (part: string) => T | undefined): T[] | undefined {
  const parts = text.split(",").map((p) => p.trim()).filter((p) => p !== "");
  const out: T[] = [];
  for (const part of parts) {
    const value = item(part);
    if (value === undefined) return undefined;
    out.push(value);
  }
  return out;
}

export function parseListeners(text: string): HostPort[] | undefined {
  return parseList(text, (p) => parseHostPort(p));
}

/** DNS servers must be addresses: a resolver cannot look up its own server by name. */
export function parseDnsServers(text: string): HostPort[] | undefined {
  return parseList(text, (p) => {
    const server = parseHostPort(p, 53);
    return server && isIP(server.host) !== 0 ? server : undefined;
  });
}

export function parseCidrs(text: string): Cidr[] | undefined {
  return parseList(text, parseCidr);
}

export function parseDurations(text: string): number[] | undefined {
  const list = parseList(text, parseDuration);
  return list && list.length > 0 ? list : undefined;
}

export interface Route {
  /** Lower-case domain, an address literal in canonical form ("[192.0.2.1]", "[ipv6:2001:db8::1]"), or "*" for every domain (a smarthost). */
  readonly domain: string;
  readonly target: HostPort;
}

/** "example.com=mx.example.net:2525;[192.0.2.1]=127.0.0.1:2526;*=smarthost:587" */
export function parseRoutes(text: string): Route[] | undefined {
  const out: Route[] = [];
  for (const part of text.split(";").map((p) => p.trim()).filter((p) => p !== "")) {
    const eq = part.indexOf("=");
    if (eq <= 0) return undefined;
    const name = part.slice(0, eq).trim();
    const domain = canonicalDomain(name);
    const target = parseHostPort(part.slice(eq + 1), 25);
    const named = domain === "*" || (name.startsWith("[") ? literalAddress(name) !== undefined : isHostName(domain));
    if (!target || !named) return undefined;
    out.push({ domain, target });
  }
  return out;
}

/** The route that names this domain itself (not "*"); an address literal matches in any of its spellings. */
export function namedRoute(routes: readonly Route[], domain: string): Route | undefined {
  const key = canonicalDomain(domain);
  return routes.find((r) => r.domain === key);
}
