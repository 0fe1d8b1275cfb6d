import type { Limits, ShapingRules } from "./rules.ts";

/**
 * The rules with the operator's environment settings (RELAY_DESTINATION_MAX_CONNECTIONS
 * and the like) over the default level: they change what applies where no
 * provider, domain or source IP rule sets the field. A field left undefined keeps the rules' own.
 */
export function withDefaultOverrides(rules: ShapingRules, overrides: Limits): ShapingRules {
  const set = Object.entries(overrides).filter(([, value]) => value !== undefined);
  return { ...rules, default: { ...rules.default, ...Object.fromEntries(set) } };
}
