/**
 * The queue by destination, as delivery makes it (delivery/queue-summary.ts)
 * and GET /v1/queue shows it (http/queue.ts): one shape for both. Times in ms.
 */

/** Recipients in the queue at one recipient domain. */
export interface DomainSummary {
  readonly domain: string;
  readonly queued: number;
  readonly deferred: number;
  /** Held by the operator until released. */
  readonly held: number;
  /** When the oldest message with a recipient in the queue there came in. */
  readonly oldest: number;
}

/** A limit in force, in the shaping file's form, and the level of the rules it came from. */
export interface ShownRule {
  readonly value: unknown;
  readonly from: { readonly level: string; readonly key?: string };
}

/**
 * One destination: what it is, the rules it runs under, its state and its
 * backlog. `Automation`: what automation holds it under (the shaping rules'
 * own type, which core does not know).
 */
export interface DestinationSummary<Automation = unknown> {
  readonly name: string;
  readonly provider?: string;
  readonly mxHosts: readonly string[];
  /** Each limit in force; absent when no rule applies to it now. */
  readonly rules?: Readonly<Record<string, ShownRule>>;
  readonly suspendedUntil?: number;
  readonly backoffUntil?: number;
  /** What automation holds it under now: a throttle or a suspension, the rule and reply behind it. */
  readonly automation?: Automation;
  readonly lastError?: string;
  readonly lastReply?: { readonly text: string; readonly at: number };
  readonly queued: number;
  readonly deferred: number;
  readonly held: number;
  /** Recipients handed to it and not settled: waiting for a connection or being sent. */
  readonly inFlight: number;
  readonly oldest?: number;
  readonly domains: readonly DomainSummary[];
}

export interface QueueSummary<Automation = unknown> {
  readonly destinations: readonly DestinationSummary<Automation>[];
  /** Recipients in the queue at domains no destination listed has taken mail for yet (not routed since start). */
  readonly domains: readonly DomainSummary[];
  /** There are more destinations, or domains with recipients in the queue, than listed. */
  readonly truncated: boolean;
}
