import { canonicalDomain, literalAddress } from "./address.ts";
import { type HostPort, isHostName, parseHostPort } from "./host-port.ts";

/** Static routes (RELAY_ROUTES): the host that takes a domain's mail instead of its MX. */
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
