import { type EffectiveRules, effectiveRules, type ShapingTarget } from "../shaping/resolve.ts";
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
  /** Every limit with the level it came from, and the provider: what GET /v1/queue shows. */
  readonly rules: EffectiveRules;
}

export function destinationShaping(rules: ShapingRules, target: ShapingTarget): DestinationShaping {
  const effective = effectiveRules(rules, target);
  const { provider, limits } = effective;
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
    rules: effective,
  };
}

/**
 * A destination's shaping under the rules in force now (`rules()` may change:
 * PUT /v1/shaping), for a destination made with `made`. Undefined once the
 * rules give its target a destination of another key (a new rule for its
 * domain): that destination's work belongs elsewhere now.
 */
export function liveShaping(
  rules: () => ShapingRules,
  target: ShapingTarget,
  made: DestinationShaping,
): () => DestinationShaping | undefined {
  return () => {
    const now = destinationShaping(rules(), target);
    return now.keySuffix === made.keySuffix ? now : undefined;
  };
}

/**
 * The sandbox's shaping: the default level's, since all domains share it
 * and it sends nothing out.
 */
export function sandboxShaping(rules: ShapingRules): DestinationShaping {
  const { limits } = effectiveRules({ ...rules, domains: new Map(), sourceIps: new Map() }, {
    recipientDomain: "",
    mxHosts: [],
  });
  return {
    limits: destinationLimits(rules.default),
    recipientsPerTransaction: rules.default.recipientsPerTransaction,
    keySuffix: "",
    rules: { limits },
  };
}

function destinationLimits(
  limits: Pick<CompleteLimits, "connections" | "messagesPerConnection" | "idleTimeout">,
): DestinationLimits {
  return {
    maxConnections: limits.connections,
    maxMessagesPerConnection: limits.messagesPerConnection,
    idleMs: limits.idleTimeout,
  };
}
