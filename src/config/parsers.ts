import { isIP } from "node:net";
import { parseDuration } from "../core/duration.ts";
import { type Cidr, parseCidr } from "../core/cidr.ts";
import { type HostPort, parseHostPort } from "../core/host-port.ts";

/** Text parsers for configuration values. Each returns undefined for text it cannot read. */

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
