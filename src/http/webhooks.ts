import { type Context, Hono } from "hono";
import { describeRoute, resolver, validator } from "hono-openapi";
import * as v from "valibot";
import type { WebhookInput, Webhooks } from "../events/webhooks.ts";
import type { DeadLetter, WebhookBacklog, WebhookRow } from "../queue/webhooks.ts";
import { eventTypes } from "../queue/schema.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { problem } from "./problem.ts";
import { pageLimit, queryHook, validJsonBody } from "./validation.ts";

export type WebhookRouteDeps = Pick<
  Webhooks,
  "register" | "list" | "get" | "remove" | "deadLetters" | "replay" | "backlogs"
>;

const inputSchema = v.pipe(
  v.object({
    url: v.pipe(v.string(), v.url("expected an http or https URL"), v.description("where events are POSTed")),
    events: v.pipe(
      v.array(v.picklist(["*", ...eventTypes], `expected "*" or an event type (${eventTypes.join(", ")})`)),
      v.minLength(1, 'expected at least one event type, or "*" for every one'),
      v.description('the event types it wants; "*": every one'),
    ),
    description: v.optional(v.pipe(v.string(), v.maxLength(500))),
  }),
  v.metadata({ ref: "WebhookInput" }),
);

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const webhookSchema = v.pipe(
  v.object({
    id: v.string(),
    url: v.string(),
    events: v.array(v.string()),
    description: v.nullable(v.string()),
    created_at: v.string(),
    cursor: v.pipe(
      v.string(),
      v.description("the last event id of the answering node it is done with (GET /v1/events cursor)"),
    ),
    backlog: v.pipe(
      v.number(),
      v.description("events of the answering node it wants that it has not taken yet, and replays"),
    ),
    dead_letters: v.pipe(
      v.number(),
      v.description("events of the answering node it did not take within the retry window"),
    ),
    attempts: v.pipe(v.number(), v.description("failed attempts of the answering node's batch being retried")),
    last_error: v.nullable(v.string()),
    last_success_at: v.nullable(v.string()),
    next_attempt_at: v.pipe(v.nullable(v.string()), v.description("when a failed batch is tried again")),
  }),
  v.metadata({ ref: "Webhook" }),
  v.description(
    "An endpoint is the fleet's: every node sends it its own events. What it has taken (cursor, backlog, " +
      "dead letters, attempts, last error and success, next attempt) is the answering node's.",
  ),
);

const createdSchema = v.object({
  ...webhookSchema.entries,
  secret: v.pipe(v.string(), v.description("the Standard Webhooks signing secret (whsec_...); shown this once")),
});

const deadLetterSchema = v.pipe(
  v.object({
    event_id: v.number(),
    event: v.pipe(v.record(v.string(), v.unknown()), v.description("the event as it was sent")),
    dead_at: v.string(),
    last_error: v.string(),
    replay_requested_at: v.nullable(v.string()),
  }),
  v.metadata({ ref: "WebhookDeadLetter" }),
);

const deadLettersQuerySchema = v.object({
  after: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, "expected an event id"), v.description("an event id")), "0"),
  limit: pageLimit,
});

const replaySchema = v.object({
  event_ids: v.optional(
    v.pipe(v.array(v.pipe(v.number(), v.integer())), v.description("replay only these; absent: every dead letter")),
  ),
});

function webhookJson(w: WebhookRow, backlog: WebhookBacklog | undefined): v.InferOutput<typeof webhookSchema> {
  return {
    id: w.id,
    url: w.url,
    events: w.eventTypes,
    description: w.description,
    created_at: iso(w.createdAt)!,
    cursor: String(w.cursor),
    backlog: backlog?.backlog ?? 0,
    dead_letters: backlog?.deadLetters ?? 0,
    attempts: w.attempts,
    last_error: w.lastError,
    last_success_at: iso(w.lastSuccessAt),
    next_attempt_at: iso(w.nextAttemptAt),
  };
}

function deadLetterJson(d: DeadLetter): v.InferOutput<typeof deadLetterSchema> {
  return {
    event_id: d.eventId,
    event: d.event,
    dead_at: iso(d.deadAt)!,
    last_error: d.lastError,
    replay_requested_at: iso(d.replayAt ?? null),
  };
}

const adminOnly = { 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' };

/** /v1/webhooks: endpoints and the events each wants, their dead letters and replays. */
export function webhookRoutes(webhooks: WebhookRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  const backlogOf = async (id: string) => (await webhooks.backlogs()).find((b) => b.id === id);
  const notFound = (c: Context<AuthEnv>, id: string) =>
    problem(c, 404, "Not Found", `no webhook ${JSON.stringify(id)}`);

  app.get(
    "/",
    describeRoute({
      tags: ["webhooks"],
      summary: "List webhook endpoints",
      description: "Every endpoint with what it has left to take from the answering node (in a fleet, each node " +
        "sends its own events and answers for them); secrets are never shown again.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The endpoints", v.object({ webhooks: v.array(webhookSchema) })),
        ...problemResponses(adminOnly),
      },
    }),
    async (c) => {
      const [all, backlogs] = await Promise.all([webhooks.list(), webhooks.backlogs()]);
      const byId = new Map(backlogs.map((b) => [b.id, b]));
      return c.json({ webhooks: all.map((w) => webhookJson(w, byId.get(w.id))) });
    },
  );

  app.post(
    "/",
    describeRoute({
      tags: ["webhooks"],
      summary: "Register a webhook endpoint",
      description: "It is sent the events written from now on (in a fleet, by every node: each sees it within " +
        "about a second and sends it its events since the registration), of the types it wants, in batches signed per " +
        "Standard Webhooks with the secret in the answer (shown this once). A URL whose host is a loopback, " +
        "private or link-local address is refused unless RELAY_WEBHOOK_ALLOW_PRIVATE is true; a name is checked " +
        "on every address it resolves to at each delivery.",
      security: [{ bearer: ["admin"] }],
      requestBody: { content: { "application/json": { schema: resolver(inputSchema) } } },
      responses: {
        201: json("Registered", createdSchema),
        ...problemResponses({ ...adminOnly, 400: "The body is not JSON", 422: "Invalid fields (every one listed)" }),
      },
    }),
    async (c) => {
      const parsed = await validJsonBody(c, inputSchema, {
        title: "Invalid webhook",
        example: '{"url": "https://...", "events": ["*"]}',
      });
      if (!parsed.ok) return parsed.response;
      const registered = await webhooks.register(parsed.output as WebhookInput);
      if (!registered.ok) {
        return problem(c, 422, "Invalid webhook", "one or more fields are invalid", [{
          field: registered.field,
          message: registered.reason,
        }]);
      }
      const { webhook } = registered;
      const body: v.InferOutput<typeof createdSchema> = {
        ...webhookJson(webhook, await backlogOf(webhook.id)),
        secret: webhook.secret,
      };
      return c.json(body, 201);
    },
  );

  app.get(
    "/:id",
    describeRoute({
      tags: ["webhooks"],
      summary: "One webhook endpoint",
      description: "Its backlog, dead letters, last error and next attempt, on the answering node.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The endpoint", webhookSchema),
        ...problemResponses({ ...adminOnly, 404: "No such webhook" }),
      },
    }),
    async (c) => {
      const id = c.req.param("id");
      const webhook = await webhooks.get(id);
      return webhook ? c.json(webhookJson(webhook, await backlogOf(id))) : notFound(c, id);
    },
  );

  app.delete(
    "/:id",
    describeRoute({
      tags: ["webhooks"],
      summary: "Delete a webhook endpoint",
      description: "Nothing more is sent to it (by any node of a fleet, once it sees the deletion, within about " +
        "a second); its dead letters go with it.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("Deleted", v.object({ deleted: v.string() })),
        ...problemResponses({ ...adminOnly, 404: "No such webhook" }),
      },
    }),
    async (c) => {
      const id = c.req.param("id");
      return (await webhooks.remove(id)) ? c.json({ deleted: id }) : notFound(c, id);
    },
  );

  app.get(
    "/:id/dead-letters",
    describeRoute({
      tags: ["webhooks"],
      summary: "List an endpoint's dead letters",
      description: "Events of the answering node the endpoint did not take within the retry window (at least 24 " +
        "hours), in log order. " +
        "Resume with `after` set to the last `event_id` of a page.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("A page of dead letters", v.object({ dead_letters: v.array(deadLetterSchema) })),
        ...problemResponses({ ...adminOnly, 400: "Invalid query", 404: "No such webhook" }),
      },
    }),
    validator("query", deadLettersQuerySchema, queryHook),
    async (c) => {
      const id = c.req.param("id") ?? "";
      if (!(await webhooks.get(id))) return notFound(c, id);
      const { after, limit } = c.req.valid("query");
      const letters = await webhooks.deadLetters(id, Number(after), Number(limit));
      return c.json({ dead_letters: letters.map(deadLetterJson) });
    },
  );

  app.post(
    "/:id/dead-letters/replay",
    describeRoute({
      tags: ["webhooks"],
      summary: "Replay dead letters",
      description: "Sends the endpoint's dead letters on the answering node (or those of `event_ids`) again, before " +
        "its next live events, " +
        "with the same retries; those it takes are removed.",
      security: [{ bearer: ["admin"] }],
      requestBody: { content: { "application/json": { schema: resolver(replaySchema) } } },
      responses: {
        202: json("Queued for sending", v.object({ replaying: v.number() })),
        ...problemResponses({
          ...adminOnly,
          400: "The body is not JSON",
          404: "No such webhook",
          422: "Invalid fields (every one listed)",
        }),
      },
    }),
    async (c) => {
      const id = c.req.param("id") ?? "";
      if (!(await webhooks.get(id))) return notFound(c, id);
      const parsed = await validJsonBody(c, replaySchema, {
        title: "Invalid replay",
        example: '{} or {"event_ids": [1, 2]}',
        emptyAs: {},
      });
      if (!parsed.ok) return parsed.response;
      return c.json({ replaying: await webhooks.replay(id, parsed.output.event_ids) }, 202);
    },
  );
  return app;
}
