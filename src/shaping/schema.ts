import * as v from "valibot";
import { asciiDomain, domainNameError } from "../core/address.ts";
import { formatIp, ipToBigInt } from "../core/cidr.ts";
import { parseDuration } from "../core/duration.ts";
import { isMap } from "./overlay.ts";
import { parseRateLimit } from "./rate.ts";
import {
  type AutomationAction,
  type AutomationRule,
  type CompleteLimits,
  LIMIT_FILE_NAMES,
  LIMIT_NAMES,
  type Limits,
  type ProviderRule,
  type ReplyMatch,
  type ShapingRules,
  THROTTLE_LIMIT_NAMES,
  type Warmup,
  type WarmupPlan,
  type WarmupRates,
  type WarmupStep,
} from "./rules.ts";

/**
 * The shaping file's schema (docs/shaping.md): valibot reads the parsed
 * YAML (or JSON) into `ShapingRules`. Every message says what was expected
 * and what was found, so that with its path and line it tells the operator
 * what to change.
 */

/** A value as a message names it. */
function shown(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

/** A single value read by `parse`; undefined from it is an error naming `expected`. */
function scalar<T>(expected: string, parse: (input: unknown) => T | undefined) {
  return v.pipe(
    v.unknown(),
    v.rawTransform<unknown, T>(({ dataset, addIssue, NEVER }) => {
      const value = parse(dataset.value);
      if (value === undefined) {
        addIssue({ message: `expected ${expected}, got ${shown(dataset.value)}` });
        return NEVER;
      }
      return value;
    }),
  );
}

const fromText = <T>(parse: (text: string) => T | undefined) => (input: unknown) =>
  typeof input === "string" ? parse(input) : undefined;

/** An object with exactly these fields: an unknown one is an error, as is a missing required one. */
function exactly<const E extends v.ObjectEntries>(entries: E) {
  const known = Object.keys(entries).join(", ");
  return v.strictObject(
    entries,
    (issue) => issue.expected === "never" ? `unknown field; known fields: ${known}` : "missing; it is required here",
  );
}

/** A map with exactly these fields (valibot takes a list for an object; a file must not). */
function fields<const E extends v.ObjectEntries>(entries: E) {
  const known = Object.keys(entries).join(", ");
  return v.pipe(
    v.unknown(),
    v.check(isMap, (issue) => `expected a map of fields (${known}), got ${shown(issue.input)}`),
    exactly(entries),
  );
}

/** A list of at least one `item`. */
function listOf<T>(expected: string, item: v.GenericSchema<unknown, T>) {
  return v.pipe(
    v.unknown(),
    v.check(Array.isArray, (issue) => `expected a list of ${expected}, got ${shown(issue.input)}`),
    v.array(item),
    v.minLength(1, `expected at least one of ${expected}, got an empty list`),
  );
}

/** A map whose keys `key` accepts, of `item`s, as a Map keyed by the key's normal form. */
function keyedBy<T>(expectedKey: string, key: (text: string) => string | undefined, item: v.GenericSchema<unknown, T>) {
  return v.pipe(
    v.unknown(),
    v.check(isMap, (issue) => `expected a map by ${expectedKey}, got ${shown(issue.input)}`),
    v.record(
      v.pipe(
        v.string(),
        v.check(
          (text) => key(text) !== undefined,
          (issue) => `expected ${expectedKey} as the key, got ${shown(issue.input)}`,
        ),
      ),
      item,
    ),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const map = new Map<string, T>();
      const written = new Map<string, string>();
      for (const [text, value] of Object.entries(dataset.value)) {
        const normal = key(text)!;
        const earlier = written.get(normal);
        if (earlier !== undefined) {
          addIssue({
            message: `names the same as ${JSON.stringify(earlier)}; write it once`,
            path: [{ type: "object", origin: "key", input: dataset.value, key: text, value }],
          });
        }
        written.set(normal, text);
        map.set(normal, value);
      }
      return dataset.issues ? NEVER : map;
    }),
  );
}

// ---- values --------------------------------------------------------------------------

const count = scalar(
  "a whole number of at least 1",
  (input) => typeof input === "number" && Number.isSafeInteger(input) && input >= 1 ? input : undefined,
);
const rate = scalar("a rate such as 100/h, 10/min, 5/s, 2000/d, or unlimited", fromText(parseRateLimit));
const duration = scalar(
  "a duration such as 30s, 5m, 2h or 1d",
  fromText((text) => {
    const ms = parseDuration(text);
    return ms !== undefined && ms > 0 ? ms : undefined;
  }),
);
const percentage = scalar(
  "a percentage such as 0.3%",
  fromText((text) => {
    const match = /^(\d+(?:\.\d+)?)\s*%$/.exec(text.trim());
    const percent = Number(match?.[1]);
    return match && percent <= 100 ? percent / 100 : undefined;
  }),
);
const bool = scalar("true or false", (input) => (typeof input === "boolean" ? input : undefined));

/** A name of our own making (a provider, an automation rule): it starts with a letter, so maps keep their written order. */
const nameOf = (text: string) => (/^[a-z][a-z0-9_.-]*$/.test(text) ? text : undefined);
const NAME = "a name of lower case letters, digits, '.', '_' and '-', starting with a letter";

const domainKey = (text: string) => {
  const domain = asciiDomain(text);
  return domain !== "" && domainNameError(domain) === undefined ? domain : undefined;
};

/** "google.com", also written ".google.com" or "*.google.com"; at least two labels, so no suffix claims a whole TLD. */
const mxSuffix = scalar(
  "a host name suffix of at least two labels, such as google.com",
  fromText((text) => {
    const domain = domainKey(text.trim().replace(/^\*?\./, ""));
    return domain?.includes(".") ? domain : undefined;
  }),
);

const ipKey = (text: string) => {
  const value = ipToBigInt(text.trim());
  return value === undefined ? undefined : formatIp(value);
};

// ---- limits --------------------------------------------------------------------------

const LIMIT_VALUES = {
  connections: count,
  connectionRate: rate,
  messagesPerConnection: count,
  recipientsPerTransaction: count,
  messageRate: rate,
  idleTimeout: duration,
  retrySchedule: listOf("durations such as 5m", duration),
} satisfies Record<keyof Limits, v.GenericSchema>;

const optionalLimitEntries = Object.fromEntries(
  LIMIT_NAMES.map((name) => [LIMIT_FILE_NAMES[name], v.optional(LIMIT_VALUES[name])]),
);

/** File fields to Limits, leaving out those not given. */
function toLimits(value: Record<string, unknown>): Limits {
  return Object.fromEntries(
    LIMIT_NAMES.flatMap((
      name,
    ) => (value[LIMIT_FILE_NAMES[name]] === undefined ? [] : [[name, value[LIMIT_FILE_NAMES[name]]]])),
  ) as Limits;
}

const limits = v.pipe(fields(optionalLimitEntries), v.transform((value) => toLimits(value)));

const completeLimits = v.pipe(
  fields(Object.fromEntries(LIMIT_NAMES.map((name) => [LIMIT_FILE_NAMES[name], LIMIT_VALUES[name]]))),
  v.transform((value) => toLimits(value) as CompleteLimits),
);

const provider: v.GenericSchema<unknown, ProviderRule> = v.pipe(
  fields({ mx_suffixes: listOf("host name suffixes such as google.com", mxSuffix), ...optionalLimitEntries }),
  v.transform(({ mx_suffixes, ...rest }) => ({ mxSuffixes: mx_suffixes, limits: toLimits(rest) })),
);

// ---- automation ----------------------------------------------------------------------

const replyCode = scalar(
  "a reply code from 400 to 599",
  (input) => typeof input === "number" && Number.isInteger(input) && input >= 400 && input <= 599 ? input : undefined,
);
const enhancedCode = scalar(
  "an enhanced status code such as 4.7.28",
  fromText((text) => (/^[45]\.\d{1,3}\.\d{1,3}$/.test(text.trim()) ? text.trim() : undefined)),
);
const someText = scalar("some text", fromText((text) => (text.trim() === "" ? undefined : text)));
const regex = v.pipe(
  v.unknown(),
  v.rawTransform<unknown, RegExp>(({ dataset, addIssue, NEVER }) => {
    if (typeof dataset.value !== "string" || dataset.value === "") {
      addIssue({ message: `expected a regular expression, got ${shown(dataset.value)}` });
      return NEVER;
    }
    try {
      return new RegExp(dataset.value, "i");
    } catch (error) {
      addIssue({ message: `expected a regular expression: ${(error as Error).message}` });
      return NEVER;
    }
  }),
);

const replyMatch: v.GenericSchema<unknown, ReplyMatch> = v.pipe(
  fields({
    code: v.optional(replyCode),
    enhanced: v.optional(enhancedCode),
    text: v.optional(someText),
    regex: v.optional(regex),
  }),
  v.check(
    (m) => Object.values(m).some((value) => value !== undefined),
    "expected at least one of code, enhanced, text, regex",
  ),
  v.transform((m) => Object.fromEntries(Object.entries(m).filter(([, value]) => value !== undefined)) as ReplyMatch),
);

const threshold = v.pipe(
  fields({ matches: count, within: duration }),
  v.transform(({ matches, within }) => ({ matches, within })),
);

const throttleLimits = v.pipe(
  fields(
    Object.fromEntries(THROTTLE_LIMIT_NAMES.map((name) => [LIMIT_FILE_NAMES[name], v.optional(LIMIT_VALUES[name])])),
  ),
  v.check((value) => Object.values(value).some((x) => x !== undefined), "expected at least one limit to tighten"),
  v.transform((value) => toLimits(value)),
);

const recovery = v.pipe(
  fields({ steps: count, every: duration }),
  v.transform(({ steps, every }) => ({ steps, every })),
);

const ruleCommon = {
  provider: v.optional(scalar(NAME, fromText(nameOf))),
  match: replyMatch,
  threshold: v.optional(threshold),
};

const ACTIONS = "throttle, suspend or bounce";
const automationRule = v.pipe(
  v.unknown(),
  v.check(
    isMap,
    (issue) => `expected a map of fields (provider, match, threshold, action, ...), got ${shown(issue.input)}`,
  ),
  v.variant(
    "action",
    [
      exactly({
        ...ruleCommon,
        action: v.literal("throttle"),
        limits: throttleLimits,
        duration,
        recovery: v.optional(recovery),
      }),
      exactly({ ...ruleCommon, action: v.literal("suspend"), duration }),
      exactly({ ...ruleCommon, action: v.literal("bounce") }),
    ],
    (
      issue,
    ) => (issue.received === "undefined"
      ? `missing; expected ${ACTIONS}`
      : `expected ${ACTIONS}, got ${issue.received}`),
  ),
);

function toAction(rule: v.InferOutput<typeof automationRule>): AutomationAction {
  switch (rule.action) {
    case "throttle":
      return {
        kind: "throttle",
        limits: rule.limits,
        duration: rule.duration,
        ...(rule.recovery ? { recovery: rule.recovery } : {}),
      };
    case "suspend":
      return { kind: "suspend", duration: rule.duration };
    case "bounce":
      return { kind: "bounce" };
  }
}

const automation = v.pipe(
  keyedBy(NAME, nameOf, automationRule),
  v.transform((rules): AutomationRule[] =>
    [...rules].map(([name, rule]) => ({
      name,
      ...(rule.provider ? { provider: rule.provider } : {}),
      match: rule.match,
      ...(rule.threshold ? { threshold: rule.threshold } : {}),
      action: toAction(rule),
    }))
  ),
);

// ---- warmup --------------------------------------------------------------------------

const RATE_NAMES = { deferral_rate: "deferralRate", block_rate: "blockRate", complaint_rate: "complaintRate" } as const;

function rates(required: boolean) {
  return v.pipe(
    fields(
      Object.fromEntries(Object.keys(RATE_NAMES).map((name) => [name, required ? percentage : v.optional(percentage)])),
    ),
    v.transform((value) =>
      Object.fromEntries(
        Object.entries(RATE_NAMES).flatMap(([file, name]) => (value[file] === undefined ? [] : [[name, value[file]]])),
      ) as Partial<WarmupRates>
    ),
  );
}

const step: v.GenericSchema<unknown, WarmupStep> = v.pipe(
  fields({ daily: count, hourly: count }),
  v.check(
    (s) => s.hourly <= s.daily,
    (issue) => `the hourly cap ${issue.input.hourly} is above the daily cap ${issue.input.daily}`,
  ),
  v.transform(({ daily, hourly }) => ({ daily, hourly })),
);

const steps = v.pipe(
  listOf("steps such as { daily: 50, hourly: 10 }", step),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    dataset.value.forEach((s, i) => {
      const before = dataset.value[i - 1];
      if (before && s.daily < before.daily) {
        addIssue({
          message: `the daily cap ${s.daily} is below the previous step's ${before.daily}; steps only grow`,
          path: [{ type: "array", origin: "value", input: dataset.value, key: i, value: s }],
        });
      }
    });
  }),
);

function plan(required: boolean) {
  const field = <T>(schema: v.GenericSchema<unknown, T>) => (required ? schema : v.optional(schema));
  return v.pipe(
    fields({
      window: field(duration),
      steps: field(steps),
      promote_below: field(rates(required)),
      demote_above: field(rates(required)),
    }),
    v.transform(({ window, steps, promote_below, demote_above }) => ({
      window,
      steps,
      promoteBelow: promote_below,
      demoteAbove: demote_above,
    })),
  );
}

const warmup: v.GenericSchema<unknown, Warmup> = v.pipe(
  fields({ enabled: bool, default: plan(true), providers: v.optional(keyedBy(NAME, nameOf, plan(false)), {}) }),
  v.transform(({ enabled, default: fallback, providers }) => {
    const base = fallback as WarmupPlan;
    const own = new Map<string, WarmupPlan>();
    for (const [name, p] of providers) {
      own.set(name, {
        window: p.window ?? base.window,
        steps: p.steps ?? base.steps,
        promoteBelow: { ...base.promoteBelow, ...p.promoteBelow },
        demoteAbove: { ...base.demoteAbove, ...p.demoteAbove },
      });
    }
    return { enabled, default: base, providers: own };
  }),
);

// ---- the file ------------------------------------------------------------------------

export const shapingSchema: v.GenericSchema<unknown, ShapingRules> = v.pipe(
  fields({
    default: completeLimits,
    providers: v.optional(keyedBy(NAME, nameOf, provider), {}),
    domains: v.optional(keyedBy("a domain name", domainKey, limits), {}),
    source_ips: v.optional(keyedBy("an IPv4 or IPv6 address", ipKey, limits), {}),
    automation: v.optional(automation, {}),
    warmup: v.optional(warmup),
  }),
  v.transform(({ default: fallback, providers, domains, source_ips, automation, warmup }) => ({
    default: fallback,
    providers,
    domains,
    sourceIps: source_ips,
    automation,
    ...(warmup ? { warmup } : {}),
  })),
);
