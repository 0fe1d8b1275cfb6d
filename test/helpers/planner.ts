import { systemClock } from "../../src/core/clock.ts";
import type { StsResult } from "../../src/delivery/mta-sts/index.ts";
import { createPlanner, type PlannerDeps } from "../../src/delivery/planner.ts";
import type { RouteResult } from "../../src/delivery/route.ts";
import { SandboxTransport } from "../../src/delivery/sandbox.ts";
import { TlsFallbackMemory } from "../../src/delivery/tls-memory.ts";
import { shippedShaping } from "../../src/shaping/shipped.ts";

/**
 * The delivery planner with every domain routed to `route` and the MTA-STS
 * policies in `policies` (none for other domains), shipped shaping, no
 * sandbox, then `extra`; `looked` lists the domains whose policy it asked for.
 */
export function stsPlanner(
  route: RouteResult,
  policies: Readonly<Record<string, StsResult>>,
  extra: Partial<PlannerDeps> = {},
): { plan: ReturnType<typeof createPlanner>; looked: string[] } {
  const looked: string[] = [];
  const plan = createPlanner({
    route: async () => route,
    sandbox: false,
    sandboxTransport: new SandboxTransport(),
    smtp: { heloName: "relay.test", tlsMemory: new TlsFallbackMemory(systemClock) },
    shaping: () => shippedShaping().rules,
    mtaSts: {
      policyFor: async (domain) => {
        looked.push(domain);
        return policies[domain] ?? { mode: "none" };
      },
    },
    ...extra,
  });
  return { plan, looked };
}
