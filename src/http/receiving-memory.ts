import type { MiddlewareHandler } from "hono";
import type { MemoryBudget } from "../core/memory-budget.ts";
import { problem } from "./problem.ts";

/**
 * A message sent over HTTP is held whole, several times over, while it is
 * turned into the message that is stored: the body, its text, the parsed
 * JSON (base64 content included), the decoded attachments and the MIME
 * message built from them. Each counts about as much as the body.
 */
export const COPIES_OF_THE_BODY = 4;

/** Seconds a client told 503 waits before it tries again: a message being received is done in about that time. */
const RETRY_AFTER_SECONDS = 5;

/**
 * Reserve the memory a request's body will take from the budget messages
 * being received share (RELAY_RECEIVING_MEMORY, with SMTP) before it is
 * read: its Content-Length times the copies made of it, or the largest
 * body when it has none (chunked). None free: 503 with Retry-After, the
 * body unread. The reservation is given back once the answer is made.
 */
export function receivingMemory(budget: MemoryBudget, largestBody: number): MiddlewareHandler {
  return async (c, next) => {
    const declared = Number(c.req.header("content-length"));
    const length = Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, largestBody) : largestBody;
    const reservation = budget.tryReserve(length * COPIES_OF_THE_BODY);
    if (!reservation) {
      c.header("Retry-After", String(RETRY_AFTER_SECONDS));
      return problem(
        c,
        503,
        "Busy",
        "the node is receiving as many messages as its memory for them allows (RELAY_RECEIVING_MEMORY); try again later",
      );
    }
    try {
      await next();
    } finally {
      reservation.release();
    }
  };
}
