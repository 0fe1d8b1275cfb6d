import { formatDuration } from "../core/duration.ts";
import { formatRateLimit, type RateLimit } from "./rate.ts";
import type { EffectiveRules, RuleSource } from "./resolve.ts";
import { LIMIT_FILE_NAMES, LIMIT_NAMES, type LimitName } from "./rules.ts";

/** One limit as the API shows it: its value in the file's form and the level it came from. */
export interface ShownLimit {
  readonly value: unknown;
  readonly from: RuleSource;
}

const SHOW: { readonly [K in LimitName]: (value: never) => unknown } = {
  connections: (n: number) => n,
  connectionRate: (rate: RateLimit) => formatRateLimit(rate),
  messagesPerConnection: (n: number) => n,
  recipientsPerTransaction: (n: number) => n,
  messageRate: (rate: RateLimit) => formatRateLimit(rate),
  idleTimeout: (ms: number) => formatDuration(ms),
  retrySchedule: (delays: readonly number[]) => delays.map(formatDuration),
};

/** A destination's limits by their names in the file, each as the file writes it, with where it came from. */
export function showLimits(rules: EffectiveRules): Record<string, ShownLimit> {
  return Object.fromEntries(
    LIMIT_NAMES.map((name) => {
      const { value, from } = rules.limits[name];
      return [LIMIT_FILE_NAMES[name], { value: SHOW[name](value as never), from }];
    }),
  );
}
