import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import type { Drain } from "../fleet/drain.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";

export interface DrainRouteDeps {
  /** This node's id (RELAY_NODE_ID). */
  readonly self: string;
  readonly drain: Pick<Drain, "since" | "start" | "left" | "handsOver">;
}

const count = (what: string) => v.pipe(v.number(), v.description(what));

const drainSchema = v.pipe(
  v.object({
    node: v.pipe(v.string(), v.description("the node that answered")),
    draining: v.pipe(v.boolean(), v.description("the node refuses new mail (SMTP 421 4.3.2, HTTP 503)")),
    since: v.pipe(v.nullable(v.string()), v.description("RFC 3339 time the drain began; null: not draining")),
    hands_over: v.pipe(
      v.boolean(),
      v.description("the queue goes to the fleet's other nodes; false: this node delivers it (RELAY_DURABILITY=local)"),
    ),
    left: v.pipe(
      v.object({
        queued: count("due, or being delivered"),
        deferred: count("waiting for their next attempt after a temporary failure"),
        held: count("held by the operator: they stay until released or bounced"),
        total: count("every recipient still in this node's queue: 0 is drained"),
      }),
      v.description("recipients still in this node's queue, counted now"),
    ),
  }),
  v.metadata({ ref: "Drain" }),
);

const adminOnly = { 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' };

/**
 * /v1/drain (`relay drain`): stop taking new mail and deliver the queue.
 * The drain lasts until the process stops; a restarted node accepts again.
 */
export function drainRoutes(deps: DrainRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  const state = async (): Promise<v.InferOutput<typeof drainSchema>> => {
    const since = deps.drain.since;
    return {
      node: deps.self,
      draining: since !== undefined,
      since: since === undefined ? null : new Date(since).toISOString(),
      hands_over: deps.drain.handsOver,
      left: await deps.drain.left(),
    };
  };

  app.get(
    "/",
    describeRoute({
      tags: ["fleet"],
      summary: "Whether this node drains, and what is left of its queue",
      security: [{ bearer: ["admin"] }],
      responses: { 200: json("The drain", drainSchema), ...problemResponses(adminOnly) },
    }),
    async (c) => c.json(await state()),
  );

  app.post(
    "/",
    describeRoute({
      tags: ["fleet"],
      summary: "Drain this node: refuse new mail, deliver the queue",
      description: "From now on SMTP answers new connections and new transactions `421 4.3.2`, " +
        "`POST /v1/messages` answers 503, `/readyz` answers 503 and the node's row in the fleet registry says " +
        "`draining` (GET /v1/fleet); delivery goes on. Poll GET /v1/drain until `left.total` is 0, then stop " +
        "the node. Deferred recipients wait for their next attempt (`POST /v1/queue/:destination/retry` makes " +
        "them due now); held ones stay until released or bounced. A drain already in force is left as it is. " +
        "It lasts until the process stops: a restarted node accepts mail again.",
      security: [{ bearer: ["admin"] }],
      responses: { 200: json("The node drains", drainSchema), ...problemResponses(adminOnly) },
    }),
    async (c) => {
      await deps.drain.start();
      return c.json(await state());
    },
  );
  return app;
}
