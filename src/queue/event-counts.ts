import type { Database } from "./database.ts";
import { type EventType, eventTypes } from "./schema.ts";

/** Events of each type in one time bucket: `start` (ms) is where the bucket begins. */
export interface EventBucket {
  readonly start: number;
  readonly counts: Readonly<Partial<Record<EventType, number>>>;
}

/**
 * Events counted per type and per bucket of `?2` ms from `?1` up to `?3`.
 *
 * The events table has no index on `at`, and needs none: ids grow with time,
 * so a binary search over the primary key (the recursive `boundary`, one
 * rowid lookup per step, about 20 for a million events) finds the first
 * event at or after `?1`, and the count reads only the rows from there on.
 * Its cost follows the events in the window, not the length of the log.
 * `at` is the time of each change, taken just before its transaction, so
 * neighbours may be out of order by the length of a commit; an event that
 * close to the window's start may be left out, which a chart cannot show.
 * The bucket is cast: large numbers may be bound as reals, and a real
 * division would split a bucket.
 * Exported for the test that reads its query plan.
 */
export const COUNT_EVENTS = `WITH RECURSIVE boundary(lo, hi) AS (
    SELECT (SELECT coalesce(min(id), 0) FROM events), (SELECT coalesce(max(id), 0) + 1 FROM events)
    UNION ALL
    SELECT
      CASE WHEN (SELECT at FROM events WHERE id >= (lo + hi) / 2 ORDER BY id LIMIT 1) < ?1 THEN (lo + hi) / 2 + 1 ELSE lo END,
      CASE WHEN (SELECT at FROM events WHERE id >= (lo + hi) / 2 ORDER BY id LIMIT 1) < ?1 THEN hi ELSE (lo + hi) / 2 END
    FROM boundary WHERE lo < hi
  )
  SELECT CAST((at - ?1) / ?2 AS INTEGER) AS bucket, type, count(*) AS n FROM events
  WHERE id >= (SELECT lo FROM boundary WHERE lo >= hi) AND at >= ?1 AND at < ?3
  GROUP BY bucket, type`;

const knownTypes: ReadonlySet<string> = new Set(eventTypes);

/** Counts of the durable event log over time: the dashboard's throughput and outcome charts. */
export class EventCounts {
  constructor(private readonly database: Database) {}

  /**
   * Every bucket of `bucketMs` from `from` until `to` (the last one may be
   * partial), oldest first, each with its events counted by type; a bucket
   * without events has empty counts.
   */
  async perBucket(from: number, to: number, bucketMs: number): Promise<EventBucket[]> {
    if (!Number.isInteger(from) || !Number.isInteger(to) || !Number.isInteger(bucketMs) || bucketMs <= 0) {
      throw new RangeError(`perBucket: expected integer times and a positive bucket, got ${from}, ${to}, ${bucketMs}`);
    }
    const buckets = Array.from(
      { length: Math.max(0, Math.ceil((to - from) / bucketMs)) },
      (_, i) => ({ start: from + i * bucketMs, counts: {} as Partial<Record<EventType, number>> }),
    );
    const result = await this.database.client.execute({ sql: COUNT_EVENTS, args: [from, bucketMs, to] });
    for (const row of result.rows) {
      const bucket = buckets[Number(row.bucket)];
      const type = String(row.type);
      if (bucket && knownTypes.has(type)) bucket.counts[type as EventType] = Number(row.n);
    }
    return buckets;
  }
}
