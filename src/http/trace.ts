import { Hono } from "hono";
import { describeRoute, resolver, validator } from "hono-openapi";
import * as v from "valibot";
import { parseDuration } from "../core/duration.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { problem } from "./problem.ts";
import { queryHook, validJsonBody } from "./validation.ts";

/** Inbound sessions from one client address, or outbound sessions to one destination (by its name). */
export type TraceTarget =
  | { readonly client: string; readonly destination?: undefined }
  | { readonly destination: string; readonly client?: undefined };

/** What the routes need: the switch (app/smtp-trace.ts) and the queue's way of naming a destination. */
export interface TraceRouteDeps {
  start(target: TraceTarget, until: number): { readonly target: TraceTarget; readonly until: number };
  stop(target: TraceTarget): boolean;
  list(): readonly { readonly target: TraceTarget; readonly until: number }[];
  /** A client address in the form sessions are matched in; undefined when it is no IP address. */
  client(address: string): string | undefined;
  /** A destination's name, or a recipient domain: the destination its mail goes to now. */
  resolve(
    ref: string,
  ): Promise<{ readonly found: true; readonly name: string } | { readonly found: false; reason: string }>;
  now(): number;
}

/** A trace that is never switched off ends by itself: a forgotten one must not fill the log for ever. */
const DEFAULT_DURATION = "10m";
const MAX_DURATION_MS = 24 * 3_600_000;

const traceSchema = v.pipe(
  v.object({
    client: v.nullable(v.pipe(v.string(), v.description("inbound SMTP sessions from this IP address"))),
    destination: v.nullable(v.pipe(v.string(), v.description("outbound SMTP sessions to this destination"))),
    until: v.pipe(v.string(), v.description("the trace ends by itself then")),
  }),
  v.metadata({ ref: "Trace" }),
);

const startSchema = v.pipe(
  v.object({
    client: v.optional(v.pipe(v.string(), v.description("an IPv4 or IPv6 address"))),
    destination: v.optional(
      v.pipe(v.string(), v.description("a destination's name from GET /v1/queue, or a recipient domain")),
    ),
    duration: v.optional(
      v.pipe(
        v.string(),
        v.check((text) => {
          const ms = parseDuration(text) ?? 0;
          return ms > 0 && ms <= MAX_DURATION_MS;
        }, "expected a duration from 1s to 24h, such as 10m"),
        v.description(`how long the trace stays on; default ${DEFAULT_DURATION}, at most 24h`),
      ),
    ),
  }),
  v.check(
    (body) => (body.client === undefined) !== (body.destination === undefined),
    "name either client or destination",
  ),
);

const stopQuerySchema = v.pipe(
  v.object({ client: v.optional(v.string()), destination: v.optional(v.string()) }),
  v.check((q) => (q.client === undefined) !== (q.destination === undefined), "name either client or destination"),
);

const adminOnly = { 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' };

function view(trace: { target: TraceTarget; until: number }): v.InferOutput<typeof traceSchema> {
  return {
    client: trace.target.client ?? null,
    destination: trace.target.destination ?? null,
    until: new Date(trace.until).toISOString(),
  };
}

/**
 * /v1/trace: SMTP session traces switched on and off without a restart. A
 * traced session logs each command and reply at `info` ("smtp trace", with
 * its session id); AUTH responses and message content never appear.
 */
export function traceRoutes(deps: TraceRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();

  /** The target a request names, checked: a client address, or a destination that exists. */
  const targetOf = async (
    named: { client?: string; destination?: string },
  ): Promise<TraceTarget | { problem: string; status: 404 | 422 }> => {
    if (named.client !== undefined) {
      const client = deps.client(named.client);
      return client === undefined
        ? { problem: `client: expected an IP address, got ${JSON.stringify(named.client)}`, status: 422 }
        : { client };
    }
    const found = await deps.resolve(named.destination!);
    return found.found ? { destination: found.name } : { problem: found.reason, status: 404 };
  };

  app.get(
    "/",
    describeRoute({
      tags: ["trace"],
      summary: "SMTP traces that are on",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The traces on now", v.object({ traces: v.array(traceSchema) })),
        ...problemResponses(adminOnly),
      },
    }),
    (c) => c.json({ traces: deps.list().map(view) }),
  );

  app.post(
    "/",
    describeRoute({
      tags: ["trace"],
      summary: "Trace SMTP sessions of a client or a destination",
      description: 'Body `{"client": "192.0.2.7"}` (inbound sessions from that address) or `{"destination": ' +
        '"example.com"}` (outbound sessions to that destination: a name from GET /v1/queue, or a recipient domain), ' +
        'with an optional `"duration"` (default 10m, at most 24h). Sessions that start while the trace is on log ' +
        "every command and reply at `info` (message `smtp trace`, fields `session`, `dir` in or out, `line`) until " +
        "they end or the trace does. AUTH responses and message content are never logged. Starting a trace that " +
        "is on sets its end anew.",
      security: [{ bearer: ["admin"] }],
      requestBody: { content: { "application/json": { schema: resolver(startSchema) } } },
      responses: {
        200: json("The trace is on", traceSchema),
        ...problemResponses({
          ...adminOnly,
          400: "The body is not JSON",
          404: "No such destination",
          422: "Invalid fields",
        }),
      },
    }),
    async (c) => {
      const parsed = await validJsonBody(c, startSchema, {
        title: "Invalid trace",
        example: '{"client": "192.0.2.7"}',
      });
      if (!parsed.ok) return parsed.response;
      const target = await targetOf(parsed.output);
      if ("problem" in target) return problem(c, target.status, "Invalid trace", target.problem);
      const until = deps.now() + parseDuration(parsed.output.duration ?? DEFAULT_DURATION)!;
      return c.json(view(deps.start(target, until)));
    },
  );

  app.delete(
    "/",
    describeRoute({
      tags: ["trace"],
      summary: "Switch a trace off",
      description: "`?client=ADDRESS` or `?destination=NAME` (or a recipient domain), as it was switched on. " +
        "Sessions under way stop logging at once.",
      security: [{ bearer: ["admin"] }],
      responses: {
        204: { description: "The trace is off" },
        ...problemResponses({ ...adminOnly, 400: "Invalid query", 404: "No such trace is on" }),
      },
    }),
    validator("query", stopQuerySchema, queryHook),
    async (c) => {
      const named = c.req.valid("query");
      // A destination that is traced is found by the name it was traced under, whatever its route says now.
      const traced = deps.list().some((t) => t.target.destination === named.destination);
      const target = named.destination !== undefined && traced
        ? { destination: named.destination }
        : await targetOf(named);
      if ("problem" in target) {
        return target.status === 422
          ? problem(c, 400, "Bad Request", target.problem)
          : problem(c, 404, "Not Found", target.problem);
      }
      if (!deps.stop(target)) return problem(c, 404, "Not Found", "no such trace is on");
      return c.body(null, 204);
    },
  );
  return app;
}
