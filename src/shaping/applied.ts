import type { RuleProblem } from "./checks.ts";
import { isMap } from "./overlay.ts";
import { LIMIT_FILE_NAMES, type LimitName } from "./rules.ts";

/** The limits delivery applies today (src/delivery/shaping.ts, outcomes.ts), as the file names them. */
export const APPLIED_LIMITS: readonly string[] = (
  [
    "connections",
    "connectionRate",
    "messagesPerConnection",
    "recipientsPerTransaction",
    "messageRate",
    "idleTimeout",
    "retrySchedule",
  ] satisfies LimitName[]
).map((name) => LIMIT_FILE_NAMES[name]);

const NOT_APPLIED = `not applied yet: delivery applies only ${APPLIED_LIMITS.join(", ")} today; remove it`;

/** The levels of the file whose entries hold limits, keyed by name, domain or IP. */
const KEYED_LEVELS = ["providers", "domains", "source_ips"];

/** The limits a level of the operator's own file sets that delivery does not apply. */
function unappliedLimits(level: unknown, path: readonly string[]): RuleProblem[] {
  if (!isMap(level)) return [];
  return Object.keys(level)
    .filter((field) => Object.values(LIMIT_FILE_NAMES).includes(field) && !APPLIED_LIMITS.includes(field))
    .map((field) => ({ path: [...path, field], message: NOT_APPLIED }));
}

/**
 * What an operator's file sets that delivery does not apply yet
 * (automation, warmup): refused, since a setting that is accepted must
 * do what it says. The shipped file's own settings of these stay, shown by
 * `GET /v1/shaping` with the fields that apply.
 */
export function unappliedSettings(own: unknown): RuleProblem[] {
  if (!isMap(own)) return [];
  const problems = unappliedLimits(own.default, ["default"]);
  for (const level of KEYED_LEVELS) {
    const entries = own[level];
    if (!isMap(entries)) continue;
    for (const [key, limits] of Object.entries(entries)) problems.push(...unappliedLimits(limits, [level, key]));
  }
  for (const section of ["automation", "warmup"]) {
    if (Object.hasOwn(own, section)) problems.push({ path: [section], message: NOT_APPLIED });
  }
  return problems;
}
