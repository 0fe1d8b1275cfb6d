import { reply } from "../core/reply.ts";
import { classifyTransportError } from "./classify.ts";
import type { RouteResult } from "./route.ts";
import { SIMULATOR_DOMAIN, type SandboxTransport } from "./sandbox.ts";
import type { Plan } from "./scheduler.ts";
import { SmtpTransport, type SmtpTransportDeps } from "./smtp-transport.ts";

export interface PlannerDeps {
  readonly route: (domain: string) => Promise<RouteResult>;
  /** RELAY_SANDBOX: nothing leaves the node. */
  readonly sandbox: boolean;
  readonly sandboxTransport: SandboxTransport;
  readonly smtp: SmtpTransportDeps;
}

/**
 * Domain to destination. The destination key is the set of MX hosts (MX
 * rollup): every domain hosted at the same provider shares one queue, one
 * pool and one set of limits.
 */
export function createPlanner(deps: PlannerDeps): (domain: string) => Promise<Plan> {
  return async (domain) => {
    if (deps.sandbox || domain === SIMULATOR_DOMAIN) {
      return { kind: "destination", key: "sandbox", transport: () => deps.sandboxTransport };
    }
    const route = await deps.route(domain);
    switch (route.kind) {
      case "permanent": {
        const r = reply(550, route.status, route.reason);
        return {
          kind: "bounce",
          results: (addresses) => addresses.map((address) => ({ address, reply: r, disposition: "bounced", category: "bad-domain" })),
        };
      }
      case "temporary": {
        const r = reply(451, "4.4.3", route.reason);
        return { kind: "defer", results: (addresses) => addresses.map((address) => ({ address, reply: r, ...classifyTransportError("dns") })) };
      }
      case "hosts": {
        const key = route.hosts.map((h) => `${h.name}:${h.port}`).sort().join(",");
        return { kind: "destination", key, transport: () => new SmtpTransport(route.hosts, deps.smtp) };
      }
    }
  };
}
