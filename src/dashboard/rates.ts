import type { Clock } from "../core/clock.ts";
import type { EventBucket, EventCounts } from "../queue/event-counts.ts";
import type { EventType } from "../queue/schema.ts";

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/**
 * A minute this long over is not counted again: an event's time is taken
 * just before its commit, so a minute's last events may land a moment later.
 */
const SETTLE_MS = 10_000;

/** The types the charts show: what came in, and what became of it. */
export const CHARTED_TYPES = [
  "received",
  "delivered",
  "deferred",
  "bounced",
  "expired",
  "suppressed",
  "complained",
] as const satisfies readonly EventType[];
export type ChartedType = (typeof CHARTED_TYPES)[number];

/** One chart's data: bucket starts (ms) and, per type, the count of each bucket. */
export interface Series {
  readonly bucketMs: number;
  readonly starts: readonly number[];
  readonly counts: Readonly<Record<ChartedType, readonly number[]>>;
}

export interface Rates {
  /** The last hour by minute, the current minute last. */
  readonly hour: Series;
  /** The last day by hour, the current hour last. */
  readonly day: Series;
}

/**
 * Events per minute and per hour for the overview's charts. Counted minutes
 * that have settled are kept, so a page load counts only the events since
 * the last one it saw (the first counts the day), and an hour is the sum of
 * its minutes. Concurrent loads share one count.
 */
export class EventRates {
  /** Settled minutes by start, each minute from `#settledFrom` up to `#settledUntil`. */
  readonly #minutes = new Map<number, EventBucket["counts"]>();
  #settledFrom = 0;
  #settledUntil = 0;
  #inFlight: Promise<Rates> | undefined;

  constructor(private readonly counts: Pick<EventCounts, "perBucket">, private readonly clock: Clock) {}

  current(): Promise<Rates> {
    this.#inFlight ??= this.#count().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  async #count(): Promise<Rates> {
    const now = this.clock.now();
    const thisMinute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const dayFrom = Math.floor(now / HOUR_MS) * HOUR_MS - DAY_MS + HOUR_MS;
    if (this.#settledFrom > dayFrom || this.#settledUntil < dayFrom) {
      this.#minutes.clear();
      this.#settledFrom = this.#settledUntil = dayFrom;
    }
    for (const start of this.#minutes.keys()) if (start < dayFrom) this.#minutes.delete(start);
    this.#settledFrom = dayFrom;

    const fresh = await this.counts.perBucket(this.#settledUntil, thisMinute + MINUTE_MS, MINUTE_MS);
    const minutes = new Map(this.#minutes);
    for (const bucket of fresh) {
      minutes.set(bucket.start, bucket.counts);
      if (bucket.start + MINUTE_MS + SETTLE_MS <= now && bucket.start === this.#settledUntil) {
        this.#minutes.set(bucket.start, bucket.counts);
        this.#settledUntil = bucket.start + MINUTE_MS;
      }
    }
    return {
      hour: series(minutes, thisMinute - HOUR_MS + MINUTE_MS, MINUTE_MS, 60),
      day: series(minutes, dayFrom, HOUR_MS, 24),
    };
  }
}

/** `length` buckets of `bucketMs` from `from`, each the sum of the minutes in it. */
function series(
  minutes: ReadonlyMap<number, EventBucket["counts"]>,
  from: number,
  bucketMs: number,
  length: number,
): Series {
  const starts = Array.from({ length }, (_, i) => from + i * bucketMs);
  const counts = Object.fromEntries(CHARTED_TYPES.map((type) => [type, starts.map(() => 0)])) as Record<
    ChartedType,
    number[]
  >;
  for (const [start, bucket] of minutes) {
    const index = Math.floor((start - from) / bucketMs);
    if (index < 0 || index >= length) continue;
    for (const type of CHARTED_TYPES) counts[type][index]! += bucket[type] ?? 0;
  }
  return { bucketMs, starts, counts };
}
