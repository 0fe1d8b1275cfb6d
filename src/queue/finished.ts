import type { InStatement } from "@libsql/client";
import { chunks, marks } from "./queue-states.ts";

/** A recipient `r` the message still needs: in the queue (held too), or owed a DSN. */
export const STILL_OPEN = "(r.state IN ('queued', 'deferred', 'held') OR r.dsn_pending IS NOT NULL)";
/** The message (`messages` in the outer query) has no such recipient. */
export const FINISHED = `NOT EXISTS (SELECT 1 FROM recipients AS r WHERE r.message_id = messages.id AND ${STILL_OPEN})`;

/**
 * The queue keeps a message's bytes only while it may still need them: once
 * every recipient is final (delivered, bounced, expired, cancelled) and no
 * DSN is owed (a DSN may return the original, RFC 3464), the body is dropped
 * in the transaction that finished it: its spool reference is cleared (the
 * spool collector removes a segment nobody refers to) and so is a body
 * stored in the row before the spool existed. The row, its recipients and
 * events stay for GET /v1/messages/:id.
 */
export function dropFinishedBodies(messageIds: readonly string[]): InStatement[] {
  return chunks([...new Set(messageIds)]).map((ids) => ({
    sql: `UPDATE messages SET body = X'', spool_segment = NULL, spool_offset = NULL
          WHERE id IN (${marks(ids.length)}) AND (spool_segment IS NOT NULL OR length(body) > 0) AND ${FINISHED}`,
    args: ids,
  }));
}
