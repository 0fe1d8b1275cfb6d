import { Hono } from "hono";
import { describeRoute, validator } from "hono-openapi";
import type * as v from "valibot";
import { eventJson } from "../events/event-json.ts";
import type { EventLog } from "../queue/event-log.ts";
import type { AuthEnv } from "./auth.ts";
import { eventPageSchema, eventsQuerySchema } from "./message-schema.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { queryHook } from "./validation.ts";

/**
 * GET /v1/events?after=CURSOR&limit=N[&type=a,b][&message=ID][&recipient=ADDR][&tag=T]: the
 * durable log in order; `next` is the cursor to resume from. An API key limited to sender
 * domains reads the events of messages from those domains (their envelope sender's domain,
 * as GET /v1/messages/:id decides) and those domains' own changes; no destination event and
 * nothing of anyone else's mail.
 */
export function eventRoutes(log: Pick<EventLog, "listEvents">): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get(
    "/",
    describeRoute({
      tags: ["events"],
      summary: "Read the event log",
      description:
        "Every change of a recipient's or a destination's state, in order. Resume from the `next` cursor of the last page; " +
        "a page shorter than `limit` means you are at the end for now. Filters (all optional, combined): `type` (a comma " +
        "list), `message`, `recipient`, `tag`; paging works the same with them. An API key limited to sender domains " +
        "reads only the events of messages whose envelope sender is at one of its domains, and the `domain_changed` " +
        "events of those domains: no destination events, nothing of other senders' mail. In a fleet each node has its " +
        "own log: `node=ID` reads that node's (answered by it, with the caller's credentials), `node=all` lists every " +
        "node's page side by side as `{nodes: [{node, status, body}]}`, to be paged per node with `node=ID`.",
      security: [{ bearer: ["read"] }],
      responses: {
        200: json("A page of events", eventPageSchema),
        ...problemResponses({
          400: "Invalid query",
          401: "Missing or unknown bearer token",
          403: 'The token lacks the "read" scope',
        }),
      },
    }),
    validator("query", eventsQuerySchema, queryHook),
    async (c) => {
      const { after, limit, type, message, recipient, tag } = c.req.valid("query");
      const { domains } = c.get("principal");
      const rows = await log.listEvents(Number(after), Number(limit), {
        ...(type ? { types: type } : {}),
        ...(message !== undefined ? { messageId: message } : {}),
        ...(recipient !== undefined ? { recipient } : {}),
        ...(tag !== undefined ? { tag } : {}),
        ...(domains.length > 0 ? { senderDomains: domains } : {}),
      });
      const page: v.InferOutput<typeof eventPageSchema> = {
        events: rows.map(eventJson),
        next: String(rows.at(-1)?.id ?? after),
      };
      return c.json(page);
    },
  );
  return app;
}
