/**
 * The recipient states as SQL terms, written exactly as the partial indexes'
 * WHERE clauses are (src/queue/schema.ts): SQLite uses a partial index only
 * when the query repeats its term.
 */

/** Pending: not final, and delivery may claim it (the index recipients_due). */
export const PENDING = "state IN ('queued', 'deferred')";

/** Still in the queue: pending or held by the operator (the index recipients_in_queue). */
export const IN_QUEUE = "state IN ('queued', 'deferred', 'held')";

/** Bound variables per statement when a list is bound, well under SQLite's limit. */
export const ROWS_PER_STATEMENT = 500;

export function chunks<T>(rows: readonly T[], size = ROWS_PER_STATEMENT): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** `?, ?, ?` for a list of `n` values. */
export const marks = (n: number) => Array(n).fill("?").join(", ");
