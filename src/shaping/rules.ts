import type { RateLimit } from "./rate.ts";

/**
 * Traffic shaping rules as values (docs/shaping.md describes the file they
 * are read from). Durations are milliseconds, rates are `RateLimit`s, rates
 * of replies are fractions (0.001 is 0.1%).
 */

/** What a level of the rules may set; a level that leaves a field out inherits it. */
export interface Limits {
  /** Connections open at once. */
  readonly connections?: number;
  /** New connections opened. */
  readonly connectionRate?: RateLimit;
  readonly messagesPerConnection?: number;
  readonly recipientsPerTransaction?: number;
  readonly messageRate?: RateLimit;
  /** How long a pooled connection waits for more work before QUIT. */
  readonly idleTimeout?: number;
  /** Delays between attempts after a temporary failure; the last one repeats. */
  readonly retrySchedule?: readonly number[];
}

export type LimitName = keyof Limits;

/** Every limit set: what the default level must hold, so that every field resolves. */
export type CompleteLimits = Required<Limits>;

/** Each limit as the file names it, in the order the file and the API show them. */
export const LIMIT_FILE_NAMES: Readonly<Record<LimitName, string>> = {
  connections: "connections",
  connectionRate: "connection_rate",
  messagesPerConnection: "messages_per_connection",
  recipientsPerTransaction: "recipients_per_transaction",
  messageRate: "message_rate",
  idleTimeout: "idle_timeout",
  retrySchedule: "retry",
};

export const LIMIT_NAMES = Object.keys(LIMIT_FILE_NAMES) as LimitName[];

/** The limits a throttle may tighten: how much goes and how fast, not how long a connection idles or when retries come. */
export const THROTTLE_LIMIT_NAMES = [
  "connections",
  "connectionRate",
  "messagesPerConnection",
  "recipientsPerTransaction",
  "messageRate",
] as const satisfies readonly LimitName[];

export type ThrottleLimitName = (typeof THROTTLE_LIMIT_NAMES)[number];

export type ThrottleLimits = Pick<Limits, ThrottleLimitName>;

/** A receiving provider, recognised by the host names of its MX servers. */
export interface ProviderRule {
  /** "google.com" matches google.com itself and every name under it. */
  readonly mxSuffixes: readonly string[];
  readonly limits: Limits;
}

/** What a reply must show for an automation rule to apply; every condition given must hold. */
export interface ReplyMatch {
  readonly code?: number;
  /** RFC 3463 enhanced status code, compared whole ("4.7.28"). */
  readonly enhanced?: string;
  /** Found anywhere in the reply ("421 4.7.28 Our system has..."), ignoring case. */
  readonly text?: string;
  /** Tested against the same text, ignoring case. */
  readonly regex?: RegExp;
}

export type AutomationAction =
  | {
    /** The destination runs under tighter limits for `duration`. */
    readonly kind: "throttle";
    readonly limits: ThrottleLimits;
    readonly duration: number;
    /** Then it returns to its own limits in `steps` steps, `every` apart; absent: at once. */
    readonly recovery?: { readonly steps: number; readonly every: number };
  }
  | {
    /** Nothing goes to the destination for `duration`; then its own limits apply. */
    readonly kind: "suspend";
    readonly duration: number;
  }
  | {
    /** The recipient that got the reply bounces now instead of being retried. */
    readonly kind: "bounce";
  };

export interface AutomationRule {
  readonly name: string;
  /** Only replies from this provider's hosts; absent: from any destination. */
  readonly provider?: string;
  readonly match: ReplyMatch;
  /** The action waits until this many matching replies came within this long; absent: the first one acts. */
  readonly threshold?: { readonly matches: number; readonly within: number };
  readonly action: AutomationAction;
}

/** Rates of replies over a window, as fractions of the messages sent in it. */
export interface WarmupRates {
  readonly deferralRate: number;
  readonly blockRate: number;
  readonly complaintRate: number;
}

export interface WarmupStep {
  readonly daily: number;
  readonly hourly: number;
}

/** How a new source IP grows its volume to one provider. */
export interface WarmupPlan {
  /** Rates are measured over this window, and a step lasts at least one. */
  readonly window: number;
  /** Caps from the first step on; past the last step the IP is warm and uncapped. */
  readonly steps: readonly WarmupStep[];
  /** Promoted to the next step when every rate stayed below these. */
  readonly promoteBelow: WarmupRates;
  /** Back one step when any rate went above these; in between, held. */
  readonly demoteAbove: WarmupRates;
}

/**
 * The provider warmup counts a destination under when no provider's MX
 * suffixes match its hosts: every such destination of a source IP shares
 * one plan (the default) and one set of caps. No provider may take the name.
 */
export const OTHER_PROVIDER = "other";

export interface Warmup {
  readonly enabled: boolean;
  readonly default: WarmupPlan;
  /** Each provider's own plan, its fields over the default's. */
  readonly providers: ReadonlyMap<string, WarmupPlan>;
}

export interface ShapingRules {
  readonly default: CompleteLimits;
  /** In file order: when several match an MX host, the longest suffix wins. */
  readonly providers: ReadonlyMap<string, ProviderRule>;
  /** By recipient domain, lower case A-labels. */
  readonly domains: ReadonlyMap<string, Limits>;
  /** By source IP, in canonical form (RFC 5952 for IPv6). */
  readonly sourceIps: ReadonlyMap<string, Limits>;
  /** In the order they are tried. */
  readonly automation: readonly AutomationRule[];
  readonly warmup?: Warmup;
}
