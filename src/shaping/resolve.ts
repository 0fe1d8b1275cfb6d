import { asciiDomain } from "../core/address.ts";
import { formatIp, ipToBigInt } from "../core/cidr.ts";
import { type CompleteLimits, LIMIT_NAMES, type LimitName, type Limits, type ShapingRules } from "./rules.ts";

/** Where a limit came from: a level of the rules and, below the default, its key. */
export interface RuleSource {
  readonly level: "default" | "provider" | "domain" | "source_ip";
  readonly key?: string;
}

export type EffectiveLimits = {
  readonly [K in LimitName]: { readonly value: CompleteLimits[K]; readonly from: RuleSource };
};

export interface EffectiveRules {
  /** The provider whose MX hosts these are, if the rules know it. */
  readonly provider?: string;
  readonly limits: EffectiveLimits;
}

/** A destination as the rules see it. */
export interface ShapingTarget {
  readonly sourceIp?: string;
  readonly recipientDomain: string;
  /** In order of preference. */
  readonly mxHosts: readonly string[];
}

/**
 * The provider that runs these MX hosts: the first host that a provider's
 * suffix matches decides, and of several suffixes that match it the longest
 * wins (olc.protection.outlook.com before protection.outlook.com).
 */
export function providerOf(rules: ShapingRules, mxHosts: readonly string[]): string | undefined {
  for (const raw of mxHosts) {
    const host = asciiDomain(raw);
    let best: { name: string; length: number } | undefined;
    for (const [name, provider] of rules.providers) {
      for (const suffix of provider.mxSuffixes) {
        const matches = host === suffix || host.endsWith(`.${suffix}`);
        if (matches && suffix.length > (best?.length ?? 0)) best = { name, length: suffix.length };
      }
    }
    if (best) return best.name;
  }
  return undefined;
}

/**
 * The limits for a destination, field by field from the most specific level
 * that sets each: source IP, then recipient domain, then provider, then the
 * default. A provider rule that sets only a rate keeps the default's connections.
 */
export function effectiveRules(rules: ShapingRules, target: ShapingTarget): EffectiveRules {
  const provider = providerOf(rules, target.mxHosts);
  const domain = asciiDomain(target.recipientDomain);
  const ip = target.sourceIp === undefined ? undefined : ipToBigInt(target.sourceIp);
  const sourceIp = ip === undefined ? undefined : formatIp(ip);
  const levels: { limits: Limits | undefined; from: RuleSource }[] = [
    {
      limits: sourceIp === undefined ? undefined : rules.sourceIps.get(sourceIp),
      from: { level: "source_ip", key: sourceIp },
    },
    { limits: rules.domains.get(domain), from: { level: "domain", key: domain } },
    {
      limits: provider === undefined ? undefined : rules.providers.get(provider)?.limits,
      from: { level: "provider", key: provider },
    },
  ];
  const limits = Object.fromEntries(
    LIMIT_NAMES.map((name) => {
      const level = levels.find((l) => l.limits?.[name] !== undefined);
      return [
        name,
        level
          ? { value: level.limits![name], from: level.from }
          : { value: rules.default[name], from: { level: "default" } },
      ];
    }),
  ) as unknown as EffectiveLimits;
  return { ...(provider === undefined ? {} : { provider }), limits };
}
