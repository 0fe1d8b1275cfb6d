import { Hono } from "hono";
import { describeRoute, validator } from "hono-openapi";
import * as v from "valibot";
import { parseDuration } from "../core/duration.ts";
import { lanes } from "../core/lane.ts";
import { decodeCursor, encodeCursor, queueStates } from "../queue/queue-cursor.ts";
import type { QueuePage, QueueQuery } from "../queue/queue-listing.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { pageLimit, queryHook } from "./validation.ts";

/** What the listing needs: a page of the queue (QueueStore.listQueue), and the time. */
export interface QueueListingDeps {
  list(query: QueueQuery): Promise<QueuePage>;
  now(): number;
}

const text = (description: string) => v.optional(v.pipe(v.string(), v.minLength(1), v.description(description)));

const listingQuerySchema = v.object({
  state: v.optional(v.pipe(v.picklist(queueStates), v.description("queued (not tried yet), deferred or held"))),
  domain: text("recipient domain"),
  recipient: text("one recipient address (any case)"),
  sender: text("the envelope sender (any case)"),
  tag: text("one of the message's tags"),
  older_than: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => (parseDuration(s) ?? 0) > 0, "expected a duration such as 30m, 2h or 1d"),
      v.description("only messages received longer ago than this (30m, 2h, 1d)"),
    ),
  ),
  limit: pageLimit,
  cursor: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => decodeCursor(s) !== undefined, "expected next_cursor of a previous page"),
      v.description("next_cursor of the previous page; absent for the first"),
    ),
  ),
});

const iso = (ms: number) => new Date(ms).toISOString();

const pageSchema = v.pipe(
  v.object({
    recipients: v.array(v.object({
      message_id: v.string(),
      email: v.string(),
      domain: v.string(),
      state: v.picklist(queueStates),
      in_flight: v.pipe(v.boolean(), v.description("handed to delivery now (waiting for a connection or being sent)")),
      priority: v.picklist(lanes),
      attempts: v.number(),
      next_attempt_at: v.pipe(v.string(), v.description("when it is due (held: once released)")),
      last_reply: v.nullable(v.string()),
      mail_from: v.string(),
      tags: v.array(v.string()),
    })),
    next_cursor: v.pipe(
      v.nullable(v.string()),
      v.description("pass as `cursor` for the next page; null: the listing is over"),
    ),
  }),
  v.metadata({ ref: "QueuePage" }),
);

/** GET /v1/queue/messages: recipients in the queue, filtered, a page at a time after a cursor. */
export function queueListingRoutes(deps: QueueListingDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get(
    "/",
    describeRoute({
      tags: ["queue"],
      summary: "List recipients in the queue",
      description: "Recipients queued, deferred or held, by recipient domain, then state, then oldest message " +
        "first. Follow `next_cursor` until it is null: each page is a seek in an index, as fast at a depth of " +
        "millions as at the start. `domain` (and `state` with it) narrow the seek; the other filters are checked " +
        "on at most 1000 recipients per page, so a page may hold fewer than `limit`, or none, and still have a " +
        "`next_cursor`.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("A page of the queue", pageSchema),
        ...problemResponses({
          400: "Invalid query",
          401: "Missing or unknown bearer token",
          403: 'The token lacks the "admin" scope',
        }),
      },
    }),
    validator("query", listingQuerySchema, queryHook),
    async (c) => {
      const q = c.req.valid("query");
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
      const page = await deps.list({
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(q.domain === undefined ? {} : { domain: q.domain }),
        ...(q.recipient === undefined ? {} : { recipient: q.recipient }),
        ...(q.sender === undefined ? {} : { sender: q.sender }),
        ...(q.tag === undefined ? {} : { tag: q.tag }),
        ...(q.older_than === undefined ? {} : { receivedBefore: deps.now() - parseDuration(q.older_than)! }),
        limit: Number(q.limit),
        ...(after === undefined ? {} : { after }),
      });
      const body: v.InferOutput<typeof pageSchema> = {
        recipients: page.recipients.map((r) => ({
          message_id: r.messageId,
          email: r.address,
          domain: r.domain,
          state: r.state,
          in_flight: r.inFlight,
          priority: r.lane,
          attempts: r.attempts,
          next_attempt_at: iso(r.nextAttemptAt),
          last_reply: r.lastReply,
          mail_from: r.mailFrom,
          tags: [...r.tags],
        })),
        next_cursor: page.next === undefined ? null : encodeCursor(page.next),
      };
      return c.json(body);
    },
  );
  return app;
}
