import { namedRoute, type Route } from "../core/route.ts";
import { literalAddress } from "../core/address.ts";
import type { MailHostsResult } from "../dns/mx.ts";

/** Where to deliver one domain's mail: hosts in the order to try them. */
export type RouteResult =
  | { readonly kind: "hosts"; readonly hosts: readonly TargetHost[] }
  /** The domain accepts no mail (null MX, RFC 7505) or does not exist: bounce now. */
  | { readonly kind: "permanent"; readonly status: string; readonly reason: string }
  /** DNS could not answer now: defer, never bounce. */
  | { readonly kind: "temporary"; readonly reason: string };

export interface TargetHost {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly port: number;
  /** The domain itself, used as its own MX (no MX records, RFC 5321 5.1): its name came from no MX record. */
  readonly implicit?: boolean;
}

export interface RouterDeps {
  /** RELAY_ROUTES: static routes override MX lookup; "*" matches every domain. */
  readonly routes: readonly Route[];
  readonly lookupMailHosts: (domain: string) => Promise<MailHostsResult>;
  /** RELAY_MX_PORT. */
  readonly mxPort: number;
}

export function createRouter(deps: RouterDeps): (domain: string) => Promise<RouteResult> {
  return async (domain) => {
    const route = namedRoute(deps.routes, domain) ?? deps.routes.find((r) => r.domain === "*");
    if (route) {
      // A static target given by name is resolved by the connect call itself.
      return {
        kind: "hosts",
        hosts: [{ name: route.target.host, addresses: [route.target.host], port: route.target.port }],
      };
    }
    // An address literal names its host (RFC 5321 4.1.3): no MX lookup. Ingress let through only the ones it may name.
    const address = literalAddress(domain);
    if (address !== undefined) {
      return { kind: "hosts", hosts: [{ name: address, addresses: [address], port: deps.mxPort }] };
    }
    const found = await deps.lookupMailHosts(domain);
    switch (found.kind) {
      case "hosts":
        return {
          kind: "hosts",
          hosts: found.hosts.map((h) => ({
            name: h.name,
            addresses: h.addresses,
            port: deps.mxPort,
            ...(h.implicit ? { implicit: true } : {}),
          })),
        };
      case "null-mx":
        return { kind: "permanent", status: "5.1.10", reason: `${domain} accepts no mail (null MX, RFC 7505)` };
      case "no-domain":
        return { kind: "permanent", status: "5.1.2", reason: `${domain} does not exist (NXDOMAIN)` };
      case "no-hosts":
        return {
          kind: "permanent",
          status: "5.4.4",
          reason: `no mail host of ${domain} has an address: ${found.detail}`,
        };
      case "temporary":
        return { kind: "temporary", reason: `DNS lookup for ${domain} failed: ${found.detail}` };
    }
  };
}

/**
 * Whether a domain's hosts are chosen without its MX records: a static route
 * names them, or the domain is an address literal. The domain's MTA-STS
 * policy (RFC 8461) and TLS reporting are about its MX hosts, so neither applies.
 */
export function chosenWithoutMx(routes: readonly Route[], domain: string): boolean {
  return namedRoute(routes, domain) !== undefined || routes.some((r) => r.domain === "*") ||
    literalAddress(domain) !== undefined;
}
