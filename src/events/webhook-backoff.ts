/**
 * When a failed webhook batch is tried again: exponential backoff with
 * jitter, the delay capped, for a retry window of at least a day from the
 * first failure (Standard Webhooks' own schedule spans about 27 hours); a
 * failure after the window ends the retries and the batch's events become
 * dead letters.
 */
export interface WebhookBackoff {
  /** The delay after the first failure (RELAY_WEBHOOK_BACKOFF); each next one doubles. */
  readonly firstMs: number;
  /** No delay is longer than this. */
  readonly maxMs: number;
  /** Retries go on at least this long after the first failure. */
  readonly windowMs: number;
}

export const WEBHOOK_RETRY_WINDOW_MS = 24 * 3_600_000;

export function webhookBackoff(firstMs: number): WebhookBackoff {
  return { firstMs, maxMs: 3_600_000, windowMs: WEBHOOK_RETRY_WINDOW_MS };
}

/**
 * The delay after the `attempts`-th failure (1 for the first): firstMs
 * doubled each time, capped at maxMs, then between half of it and all of it
 * at random, so that endpoints failing together do not retry together.
 */
export function retryDelay(attempts: number, backoff: WebhookBackoff, random: () => number): number {
  const exponential = Math.min(backoff.maxMs, backoff.firstMs * 2 ** Math.min(attempts - 1, 40));
  return Math.round(exponential * (0.5 + random() / 2));
}

/** Whether a failure at `now` ends the retries of a batch that first failed at `firstFailureAt`. */
export function retriesOver(firstFailureAt: number, now: number, backoff: WebhookBackoff): boolean {
  return now - firstFailureAt >= backoff.windowMs;
}
