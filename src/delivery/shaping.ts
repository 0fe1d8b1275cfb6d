import { effectiveRules, type ShapingTarget } from "../shaping/resolve.ts";
import type { CompleteLimits, ShapingRules } from "../shaping/rules.ts";
import type { DestinationLimits } from "./destination.ts";

/** What the shaping rules decide for one destination, in delivery's terms. */
export interface DestinationShaping {
  readonly limits: DestinationLimits;
  /** Recipients per transaction, for the destination's transport. */
  readonly recipientsPerTransaction: number;
  /**
   * Added to the destination key, so that domains share a destination only
   * when their rules agree: a rule for the recipient domain itself gives the
   * domain a destination of its own, and the provider is named because it is
   * found from the first MX host it knows, in the domain's preference order
   * (two domains may list the same hosts in another order). The source IP is
   * the node's, the same for every destination.
   */
  readonly keySuffix: string;
}

export function destinationShaping(rules: ShapingRules, target: ShapingTarget): DestinationShaping {
  const { provider, limits } = effectiveRules(rules, target);
  const used = [limits.connections, limits.messagesPerConnection, limits.idleTimeout, limits.recipientsPerTransaction];
  const domain = used.find((l) => l.from.level === "domain")?.from.key;
  return {
    limits: destinationLimits({
      connections: limits.connections.value,
      messagesPerConnection: limits.messagesPerConnection.value,
      idleTimeout: limits.idleTimeout.value,
    }),
    recipientsPerTransaction: limits.recipientsPerTransaction.value,
    keySuffix: (provider === undefined ? "" : `|provider:${provider}`) +
      (domain === undefined ? "" : `|domain:${domain}`),
  };
}

/** The default level's limits: for the sandbox, which all domains share and which sends nothing out. */
export const defaultLimits = (rules: ShapingRules): DestinationLimits => destinationLimits(rules.default);

function destinationLimits(
  limits: Pick<CompleteLimits, "connections" | "messagesPerConnection" | "idleTimeout">,
): DestinationLimits {
  return {
    maxConnections: limits.connections,
    maxMessagesPerConnection: limits.messagesPerConnection,
    idleMs: limits.idleTimeout,
  };
}
