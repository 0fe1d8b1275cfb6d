import { OTHER_PROVIDER, type ShapingRules, type WarmupPlan, type WarmupRates } from "./rules.ts";

/** A problem the schema cannot see alone: one part of the rules contradicts another. */
export interface RuleProblem {
  /** Where, as keys in the file ("automation", "gmail-rate", "provider"). */
  readonly path: readonly (string | number)[];
  readonly message: string;
}

const RATE_FIELDS: readonly [keyof WarmupRates, string][] = [
  ["deferralRate", "deferral_rate"],
  ["blockRate", "block_rate"],
  ["complaintRate", "complaint_rate"],
];

/** A fraction as the file writes it: 0.001 is "0.1%". */
export const percent = (fraction: number) => `${Number((fraction * 100).toPrecision(12))}%`;

function planProblems(plan: WarmupPlan, path: readonly string[]): RuleProblem[] {
  return RATE_FIELDS.flatMap(([name, field]) =>
    plan.promoteBelow[name] > plan.demoteAbove[name]
      ? [{
        path: [...path, "promote_below", field],
        message: `${percent(plan.promoteBelow[name])} is above demote_above's ${
          percent(plan.demoteAbove[name])
        }; promotion must need lower rates than demotion`,
      }]
      : []
  );
}

/**
 * Every reference to a provider names one, no MX suffix belongs to two
 * providers, no provider takes the name warmup gives the unmatched ones,
 * warmup thresholds are ordered.
 */
export function ruleProblems(rules: ShapingRules): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const known = [...rules.providers.keys()];
  const unknownProvider = `names no provider; the providers are ${known.join(", ") || "(none)"}`;
  const owner = new Map<string, string>();
  if (rules.providers.has(OTHER_PROVIDER)) {
    problems.push({
      path: ["providers", OTHER_PROVIDER],
      message: `the name "${OTHER_PROVIDER}" is reserved: warmup counts the destinations no provider matches under it`,
    });
  }
  for (const [name, provider] of rules.providers) {
    for (const suffix of provider.mxSuffixes) {
      const other = owner.get(suffix);
      if (other !== undefined && other !== name) {
        problems.push({
          path: ["providers", name, "mx_suffixes"],
          message: `"${suffix}" is already a suffix of provider ${other}`,
        });
      }
      owner.set(suffix, name);
    }
  }
  for (const rule of rules.automation) {
    if (rule.provider !== undefined && !rules.providers.has(rule.provider)) {
      problems.push({ path: ["automation", rule.name, "provider"], message: unknownProvider });
    }
  }
  if (rules.warmup) {
    problems.push(...planProblems(rules.warmup.default, ["warmup", "default"]));
    for (const [name, plan] of rules.warmup.providers) {
      if (!rules.providers.has(name)) problems.push({ path: ["warmup", "providers", name], message: unknownProvider });
      problems.push(...planProblems(plan, ["warmup", "providers", name]));
    }
  }
  return problems;
}
