import { Hono } from "hono";
import { describeRoute, validator } from "hono-openapi";
import * as v from "valibot";
import type { RecipientSelector } from "../queue/recipient-selector.ts";
import type { QueueStore } from "../queue/store.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { problem } from "./problem.ts";
import { paramHook } from "./validation.ts";

type MessageSelector = Extract<RecipientSelector, { messageId: string }>;

/**
 * The operator's actions on a message or one of its recipients: the queue's
 * hold, release and cancel (QueueControl), and delivery's retry (which wakes
 * it) and bounce (which records the outcome and the DSN).
 */
export interface MessageSteeringDeps {
  readonly store: Pick<QueueStore, "messageView">;
  hold(at: MessageSelector): Promise<number>;
  release(at: MessageSelector): Promise<number>;
  retry(at: MessageSelector): Promise<number>;
  bounce(at: MessageSelector): Promise<number>;
  cancel(at: MessageSelector): Promise<number>;
}

const actions = ["hold", "release", "retry", "bounce"] as const;
type Action = (typeof actions)[number] | "cancel";

/** The answer's field for each action: how many recipients it changed. */
const countField = {
  hold: "held",
  release: "released",
  retry: "due_now",
  bounce: "bounced",
  cancel: "cancelled",
} as const satisfies Record<Action, string>;

const steeredSchema = v.pipe(
  v.object({
    id: v.string(),
    recipient: v.optional(v.string()),
    held: v.optional(v.pipe(v.number(), v.description("pending recipients now held"))),
    released: v.optional(v.pipe(v.number(), v.description("held recipients released"))),
    due_now: v.optional(v.pipe(v.number(), v.description("deferred recipients made due now"))),
    bounced: v.optional(v.pipe(v.number(), v.description("recipients bounced (a DSN per NOTIFY)"))),
    cancelled: v.optional(v.pipe(v.number(), v.description("recipients cancelled (no DSN)"))),
  }),
  v.metadata({ ref: "MessageSteered" }),
);

const idSchema = v.pipe(v.string(), v.minLength(1), v.description("the message id"));
const messageParams = v.object({ id: idSchema, action: v.picklist(actions) });
const recipientSchema = v.pipe(v.string(), v.minLength(1), v.description("one of its recipients' addresses"));
const recipientParams = v.object({ id: idSchema, recipient: recipientSchema, action: v.picklist(actions) });
const cancelParams = v.object({ id: idSchema, recipient: recipientSchema });

const adminOnly = {
  401: "Missing or unknown bearer token",
  403: 'The token lacks the "admin" scope',
  404: "No such message, or no such recipient of it",
};

const explained = "`hold`: what is still pending is held: never delivered until released (a `held` event each; " +
  "one being sent now finishes its attempt, and stays held if it is deferred). `release`: held recipients go " +
  "back to the queue, due when they were due (a `released` event each). `retry`: deferred recipients are due " +
  "now. `bounce`: recipients in the queue (held too) that are not being sent bounce at once, with a `bounced` " +
  "event and the DSN their NOTIFY asks for.";

/**
 * POST /v1/messages/:id/{hold,release,retry,bounce}, the same under
 * /v1/messages/:id/recipients/:recipient/ for one recipient, and DELETE of
 * that recipient (DELETE /v1/messages/:id cancels the whole message).
 */
export function messageSteeringRoutes(deps: MessageSteeringDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  const act = async (at: MessageSelector, action: Action) => {
    const count = await deps[action](at);
    return {
      id: at.messageId,
      ...(at.address === undefined ? {} : { recipient: at.address }),
      [countField[action]]: count,
    };
  };
  app.post(
    "/:id/:action",
    describeRoute({
      tags: ["messages"],
      summary: "Steer a message",
      description: `Acts on every recipient of the message. ${explained}`,
      security: [{ bearer: ["admin"] }],
      responses: { 200: json("Done: how many recipients it changed", steeredSchema), ...problemResponses(adminOnly) },
    }),
    validator("param", messageParams, paramHook),
    async (c) => {
      const { id, action } = c.req.valid("param");
      if (!(await deps.store.messageView(id))) return problem(c, 404, "Not Found", `no message ${JSON.stringify(id)}`);
      return c.json(await act({ messageId: id }, action));
    },
  );
  /** The message and its recipient named in the path: the selector, or the 404 to answer. */
  const recipientOf = async (id: string, recipient: string) => {
    const view = await deps.store.messageView(id);
    if (!view) return { missing: `no message ${JSON.stringify(id)}` };
    const known = view.recipients.find((r) => r.address.toLowerCase() === recipient.toLowerCase());
    if (!known) return { missing: `message ${id} has no recipient ${JSON.stringify(recipient)}` };
    return { at: { messageId: id, address: known.address } };
  };
  app.post(
    "/:id/recipients/:recipient/:action",
    describeRoute({
      tags: ["messages"],
      summary: "Steer one recipient of a message",
      description: `Acts on the one recipient (its address, any case, URL-encoded). ${explained}`,
      security: [{ bearer: ["admin"] }],
      responses: { 200: json("Done: 1 if it changed, 0 if not", steeredSchema), ...problemResponses(adminOnly) },
    }),
    validator("param", recipientParams, paramHook),
    async (c) => {
      const { id, recipient, action } = c.req.valid("param");
      const found = await recipientOf(id, recipient);
      if ("missing" in found) return problem(c, 404, "Not Found", found.missing!);
      return c.json(await act(found.at, action));
    },
  );
  app.delete(
    "/:id/recipients/:recipient",
    describeRoute({
      tags: ["messages"],
      summary: "Cancel one recipient of a message",
      description: "The recipient, if still in the queue (held too), is cancelled: never delivered, no DSN, a " +
        "`cancelled` event. One being sent now finishes its attempt.",
      security: [{ bearer: ["admin"] }],
      responses: { 200: json("Done: 1 if it was cancelled, 0 if not", steeredSchema), ...problemResponses(adminOnly) },
    }),
    validator("param", cancelParams, paramHook),
    async (c) => {
      const { id, recipient } = c.req.valid("param");
      const found = await recipientOf(id, recipient);
      if ("missing" in found) return problem(c, 404, "Not Found", found.missing!);
      return c.json(await act(found.at, "cancel"));
    },
  );
  return app;
}
