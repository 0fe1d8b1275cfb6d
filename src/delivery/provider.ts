import { providerOf } from "../shaping/resolve.ts";
import type { ShapingRules } from "../shaping/rules.ts";
import type { RouteResult } from "./route.ts";
import { SIMULATOR_DOMAIN } from "./sandbox.ts";

export interface ProviderLookupDeps {
  /** The router delivery uses (route.ts): static routes, address literals, MX. */
  readonly route: (domain: string) => Promise<RouteResult>;
  readonly shaping: () => ShapingRules;
  /** RELAY_SANDBOX: nothing leaves the node, so no domain has a provider. */
  readonly sandbox: boolean;
}

/**
 * The shaping rules' provider of a recipient domain, found as delivery finds
 * a destination's (planner.ts): the domain routed, its hosts matched against
 * the providers' MX suffixes. Undefined when no provider runs them, the
 * domain has no hosts, or nothing leaves the node; a DNS failure is thrown,
 * so that the caller asks again rather than remembering "none".
 */
export function providerLookup(deps: ProviderLookupDeps): (domain: string) => Promise<string | undefined> {
  return async (domain) => {
    if (deps.sandbox || domain === SIMULATOR_DOMAIN) return undefined;
    const route = await deps.route(domain);
    if (route.kind === "temporary") throw new Error(route.reason);
    if (route.kind === "permanent") return undefined;
    return providerOf(deps.shaping(), route.hosts.map((h) => h.name));
  };
}
