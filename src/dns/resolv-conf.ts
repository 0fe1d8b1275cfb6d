/** The system's nameservers, from resolv.conf(5), for when RELAY_DNS_SERVERS is not set. */
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import type { HostPort } from "../core/host-port.ts";

export const FALLBACK_SERVERS: readonly HostPort[] = [{ host: "127.0.0.1", port: 53 }];

/** `nameserver IP` lines, in order; other lines and non-IP values are ignored. */
export function parseResolvConf(text: string): HostPort[] {
  const servers: HostPort[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const host = m?.[1]?.replace(/%.*$/, ""); // a zone id (fe80::1%eth0) is dropped
    if (host !== undefined && isIP(host) !== 0) servers.push({ host, port: 53 });
  }
  return servers;
}

/** Nameservers from `path`, or 127.0.0.1:53 when the file is missing or lists none (as glibc does). */
export async function systemNameservers(path = "/etc/resolv.conf"): Promise<HostPort[]> {
  try {
    const servers = parseResolvConf(await readFile(path, "utf8"));
    return servers.length > 0 ? servers : [...FALLBACK_SERVERS];
  } catch {
    return [...FALLBACK_SERVERS];
  }
}
