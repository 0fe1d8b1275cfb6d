export interface RetryPolicy {
  /** Delays between attempts; the last one repeats (RELAY_RETRY_SCHEDULE). */
  readonly schedule: readonly number[];
  /** After this long in the queue a deferred recipient expires (RELAY_MAX_QUEUE_TIME). */
  readonly maxQueueTime: number;
}

export type RetryDecision = { readonly kind: "retry"; readonly at: number } | { readonly kind: "expire" };

/**
 * When to try a deferred recipient again. `attemptsSoFar` counts the attempt
 * that just failed. Jitter of up to 10% spreads retries of a burst so they do
 * not all hit the receiver in the same second.
 */
export function nextRetry(
  policy: RetryPolicy,
  attemptsSoFar: number,
  queuedAt: number,
  now: number,
  random: () => number = Math.random,
): RetryDecision {
  const index = Math.min(Math.max(attemptsSoFar - 1, 0), policy.schedule.length - 1);
  const delay = policy.schedule[index]!;
  const at = now + Math.round(delay * (1 + 0.1 * random()));
  const deadline = queuedAt + policy.maxQueueTime;
  if (now >= deadline) return { kind: "expire" };
  // The last retry happens at the deadline rather than being skipped.
  return { kind: "retry", at: Math.min(at, deadline) };
}
