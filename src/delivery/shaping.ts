import { type EffectiveLimits, type EffectiveRules, effectiveRules, type ShapingTarget } from "../shaping/resolve.ts";
import type { CompleteLimits, ShapingRules } from "../shaping/rules.ts";
import type { DestinationLimits } from "./destination.ts";
import { spacingOf } from "./pacing.ts";
import type { OwnLimits } from "../shaping/destination-automation.ts";

/** What the shaping rules decide for one destination, in delivery's terms. */
export interface DestinationShaping {
  readonly limits: DestinationLimits;
  /** Recipients per transaction, for the destination's transport. */
  readonly recipientsPerTransaction: number;
  /** Delays between attempts of a recipient deferred there; the last one repeats. */
  readonly retry: readonly number[];
  /**
   * Added to the destination key, so that domains share a destination only
   * when their rules agree: a rule for the recipient domain itself gives the
   * domain a destination of its own, and the provider is named because it is
   * found from the first MX host it knows, in the domain's preference order
   * (two domains may list the same hosts in another order). The source IP is
   * the node's, the same for every destination.
   */
  readonly keySuffix: string;
  /** The provider whose MX hosts these are, if the rules know it. */
  readonly provider?: string;
  /** The limits automation may tighten and leads back to, and the idle time. */
  readonly own: OwnLimits & { readonly idleTimeout: number };
  /** How far apart messages go, and new connections open. */
  readonly messageRate: Pacing;
  readonly connectionRate: Pacing;
  /** Every limit with the level it came from, and the provider: what GET /v1/queue shows. */
  readonly rules: EffectiveRules;
}

/**
 * A rate as delivery applies it: the spacing of events and who shares it. A
 * rate from a provider's rule is that provider's budget for this source IP,
 * shared by all its destinations (Gmail's MX sets for gmail.com and for
 * Workspace domains are two destinations, one sender to Google); any other
 * is the destination's own.
 */
export interface Pacing {
  readonly spacing: number;
  /** The key of the shared budget; absent: the destination's own. */
  readonly shared?: string;
}

function pacingOf(limit: EffectiveLimits["messageRate"], kind: string): Pacing {
  const spacing = spacingOf(limit.value);
  return limit.from.level === "provider" ? { spacing, shared: `${kind}|provider:${limit.from.key}` } : { spacing };
}

export function destinationShaping(rules: ShapingRules, target: ShapingTarget): DestinationShaping {
  const effective = effectiveRules(rules, target);
  const { provider, limits } = effective;
  const used = [
    limits.connections,
    limits.messagesPerConnection,
    limits.idleTimeout,
    limits.recipientsPerTransaction,
    limits.messageRate,
    limits.connectionRate,
    limits.retrySchedule,
  ];
  const domain = used.find((l) => l.from.level === "domain")?.from.key;
  return {
    limits: destinationLimits({
      connections: limits.connections.value,
      messagesPerConnection: limits.messagesPerConnection.value,
      idleTimeout: limits.idleTimeout.value,
    }),
    recipientsPerTransaction: limits.recipientsPerTransaction.value,
    ...(provider === undefined ? {} : { provider }),
    own: {
      connections: limits.connections.value,
      connectionRate: limits.connectionRate.value,
      messagesPerConnection: limits.messagesPerConnection.value,
      recipientsPerTransaction: limits.recipientsPerTransaction.value,
      messageRate: limits.messageRate.value,
      idleTimeout: limits.idleTimeout.value,
    },
    messageRate: pacingOf(limits.messageRate, "messages"),
    connectionRate: pacingOf(limits.connectionRate, "connections"),
    retry: limits.retrySchedule.value,
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
 * The sandbox's shaping: the default level's, since all domains share it,
 * and no rate: it sends nothing out.
 */
export function sandboxShaping(rules: ShapingRules): DestinationShaping {
  const defaultOnly = { ...rules, providers: new Map(), domains: new Map(), sourceIps: new Map() };
  const unpaced: Pacing = { spacing: 0 };
  return {
    ...destinationShaping(defaultOnly, { recipientDomain: "", mxHosts: [] }),
    messageRate: unpaced,
    connectionRate: unpaced,
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
