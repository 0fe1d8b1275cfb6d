import { Hono } from "hono";
import { describeRoute, resolver, validator } from "hono-openapi";
import * as v from "valibot";
import { parseDuration } from "../core/duration.ts";
import type { DestinationSummary, DomainSummary, QueueSummary } from "../core/queue-summary.ts";
import type { AutomationState } from "../shaping/destination-automation.ts";
import { limitsInFileForm } from "../shaping/throttle-limits.ts";
import type { AuthEnv } from "./auth.ts";
import type { QueueListingDeps } from "./queue-listing.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { problem } from "./problem.ts";
import { paramHook, validJsonBody } from "./validation.ts";

/** What automation holds a destination under now. */
type Automation = Exclude<AutomationState, { kind: "normal" }>;
/** A destination as GET /v1/queue and the dashboard show it. */
export type DestinationView = DestinationSummary<Automation>;

/** A destination an operator named, found (with what the actions need) or not (and why). */
export type FoundDestination =
  | { readonly found: true; readonly name: string }
  | { readonly found: false; readonly reason: string };

/**
 * What the routes need of delivery and the queue: the summary, the listing,
 * and the steering of one destination (delivery's OperatorCommands; hold
 * and release are the queue's, for the recipients at its domains).
 */
export interface QueueRouteDeps<D extends FoundDestination = FoundDestination> extends QueueListingDeps {
  summary(): Promise<QueueSummary<Automation>>;
  resolve(ref: string): Promise<D>;
  /** Returns when the suspension ends. */
  suspend(destination: Extract<D, { found: true }>, until: number): Promise<number>;
  resume(destination: Extract<D, { found: true }>): Promise<number>;
  retry(destination: Extract<D, { found: true }>): Promise<number>;
  bounce(destination: Extract<D, { found: true }>): Promise<number>;
  hold(destination: Extract<D, { found: true }>): Promise<number>;
  release(destination: Extract<D, { found: true }>): Promise<number>;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

const domainSchema = v.object({
  domain: v.string(),
  queued: v.number(),
  deferred: v.pipe(v.number(), v.description("tried and waiting for the next attempt")),
  held: v.pipe(v.number(), v.description("held by the operator until released")),
  oldest: v.pipe(v.string(), v.description("when the oldest message with a pending recipient there came in")),
});

const destinationSchema = v.pipe(
  v.object({
    name: v.pipe(
      v.string(),
      v.description(
        "the destination's name for POST /v1/queue/:destination/...: its first MX host and a hash of its key",
      ),
    ),
    provider: v.nullable(v.string()),
    mx_hosts: v.array(v.string()),
    rules: v.pipe(
      v.nullable(
        v.record(
          v.string(),
          v.object({ value: v.unknown(), from: v.object({ level: v.string(), key: v.optional(v.string()) }) }),
        ),
      ),
      v.description("every limit in force, in the shaping file's form, with the level it came from"),
    ),
    state: v.pipe(
      v.picklist(["normal", "suspended", "backing_off", "throttled"]),
      v.description(
        "suspended: by the operator or by automation; backing_off: after failing to reach it; " +
          "throttled: automation holds it under tighter limits",
      ),
    ),
    suspended_until: v.pipe(v.nullable(v.string()), v.description("the operator's suspension ends then")),
    automation: v.pipe(
      v.nullable(v.object({
        state: v.picklist(["throttled", "suspended"]),
        reason: v.picklist(["automation", "operator"]),
        rule: v.nullable(v.string()),
        reply: v.nullable(v.string()),
        limits: v.nullable(v.record(v.string(), v.union([v.number(), v.string()]))),
        until: v.pipe(v.string(), v.description("its limits or its suspension change then")),
      })),
      v.description("what the shaping rules' automation holds it under now, from which rule and reply"),
    ),
    backoff_until: v.pipe(v.nullable(v.string()), v.description("paused after failing to reach it, until then")),
    queued: v.pipe(v.number(), v.description("recipients not tried yet, at its domains (in flight included)")),
    deferred: v.number(),
    held: v.pipe(v.number(), v.description("held by the operator until released (POST .../hold)")),
    in_flight: v.pipe(
      v.number(),
      v.description("handed to it and not settled: waiting for a connection or being sent"),
    ),
    oldest: v.nullable(v.string()),
    last_reply: v.nullable(v.object({ text: v.string(), at: v.string() })),
    last_error: v.nullable(v.string()),
    domains: v.array(domainSchema),
  }),
  v.metadata({ ref: "QueueDestination" }),
);

const summarySchema = v.object({
  destinations: v.array(destinationSchema),
  domains: v.pipe(
    v.array(domainSchema),
    v.description("pending recipients at domains no destination listed has taken mail for since the start"),
  ),
  truncated: v.boolean(),
});

const paramSchema = v.object({
  destination: v.pipe(v.string(), v.minLength(1), v.description("a destination's name, or a recipient domain")),
  action: v.picklist(["suspend", "resume", "retry", "bounce", "hold", "release"]),
});

const suspendSchema = v.object({
  duration: v.pipe(
    v.string(),
    v.check((text) => (parseDuration(text) ?? 0) > 0, "expected a duration such as 30m, 2h or 1d"),
  ),
});

const steeredSchema = v.object({
  name: v.string(),
  suspended_until: v.optional(v.string()),
  due_now: v.optional(v.pipe(v.number(), v.description("recipients made due now"))),
  bounced: v.optional(v.number()),
  held: v.optional(v.number()),
  released: v.optional(v.number()),
});

const adminOnly = { 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' };

/**
 * GET /v1/queue (each destination with its rules, state, backlog and last
 * reply) and POST /v1/queue/:destination/{suspend,resume,retry,bounce,hold,release}.
 */
export function queueRoutes<D extends FoundDestination>(deps: QueueRouteDeps<D>): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get(
    "/",
    describeRoute({
      tags: ["queue"],
      summary: "The queue by destination",
      description: "Each destination this node knows (routed to since the start, or suspended) with its MX hosts, " +
        "the limits in force, its state, its pending recipients by domain, what is in flight and its last reply; " +
        "then pending recipients at other domains (the first 1000 domains by name). Counts stop at 1,000,000. " +
        "In a fleet each node has its own queue: `node=ID` asks that node, `node=all` lists every node's answer " +
        "side by side as `{nodes: [{node, status, body}]}`.",
      security: [{ bearer: ["admin"] }],
      responses: { 200: json("The queue by destination", summarySchema), ...problemResponses(adminOnly) },
    }),
    async (c) => {
      const summary = await deps.summary();
      const domain = (d: DomainSummary) => ({ ...d, oldest: iso(d.oldest)! });
      const body: v.InferOutput<typeof summarySchema> = {
        destinations: summary.destinations.map((d) => ({
          name: d.name,
          provider: d.provider ?? null,
          mx_hosts: [...d.mxHosts],
          rules: d.rules ? { ...d.rules } : null,
          state: destinationState(d),
          suspended_until: iso(d.suspendedUntil),
          automation: d.automation ? automationView(d.automation) : null,
          backoff_until: iso(d.backoffUntil),
          queued: d.queued,
          deferred: d.deferred,
          held: d.held,
          in_flight: d.inFlight,
          oldest: iso(d.oldest),
          last_reply: d.lastReply ? { text: d.lastReply.text, at: iso(d.lastReply.at)! } : null,
          last_error: d.lastError ?? null,
          domains: d.domains.map(domain),
        })),
        domains: summary.domains.map(domain),
        truncated: summary.truncated,
      };
      return c.json(body);
    },
  );

  app.post(
    "/:destination/:action",
    describeRoute({
      tags: ["queue"],
      summary: "Steer a destination",
      description: "`:destination` is a name from GET /v1/queue, or a recipient domain: the destination its mail " +
        'goes to now. `suspend` ({"duration": "1h"}): nothing is attempted there until then; what it holds and ' +
        "what comes meanwhile waits in the queue, no attempt counted (a transaction under way finishes); kept " +
        "across a restart. `resume`: the suspension (and any pause after failures) ends, and what it held and " +
        "every deferred recipient of its domains is due now. `retry`: every deferred recipient of its domains is " +
        "due now (a suspension stays). `bounce`: every recipient queued for it that is not being sent bounces, " +
        "with its event and the DSN its NOTIFY asks for. `hold`: every recipient of its domains still pending is " +
        "held (a `held` event each) until `release` (a `released` event each: due when it was due); unlike a " +
        "suspension, a hold is on the recipients there now, without an end, and new mail still goes.",
      security: [{ bearer: ["admin"] }],
      requestBody: { content: { "application/json": { schema: resolver(suspendSchema) } } },
      responses: {
        200: json("Done", steeredSchema),
        ...problemResponses({
          ...adminOnly,
          400: "The body is not JSON",
          404: "No such destination",
          422: "Invalid duration",
        }),
      },
    }),
    validator("param", paramSchema, paramHook),
    async (c) => {
      const { destination: ref, action } = c.req.valid("param");
      let until: number | undefined;
      if (action === "suspend") {
        const parsed = await validJsonBody(c, suspendSchema, {
          title: "Invalid suspension",
          example: '{"duration": "1h"}',
        });
        if (!parsed.ok) return parsed.response;
        until = deps.now() + parseDuration(parsed.output.duration)!;
      }
      const found = await deps.resolve(ref);
      if (!found.found) return problem(c, 404, "Not Found", found.reason);
      const target = found as Extract<D, { found: true }>;
      const name = found.name;
      switch (action) {
        case "suspend":
          return c.json({ name, suspended_until: iso(await deps.suspend(target, until!))! });
        case "resume":
          return c.json({ name, due_now: await deps.resume(target) });
        case "retry":
          return c.json({ name, due_now: await deps.retry(target) });
        case "bounce":
          return c.json({ name, bounced: await deps.bounce(target) });
        case "hold":
          return c.json({ name, held: await deps.hold(target) });
        case "release":
          return c.json({ name, released: await deps.release(target) });
      }
    },
  );
  return app;
}

/** A destination's state in one word: the API's `state`, the dashboard's too. */
export function destinationState(d: DestinationView): "normal" | "suspended" | "backing_off" | "throttled" {
  if (d.suspendedUntil !== undefined || d.automation?.kind === "suspended") return "suspended";
  if (d.backoffUntil !== undefined) return "backing_off";
  return d.automation?.kind === "throttled" ? "throttled" : "normal";
}

/** Automation's hold on a destination, as the API shows it. */
function automationView(state: NonNullable<DestinationView["automation"]>) {
  const { cause } = state;
  return {
    state: state.kind,
    reason: cause.reason,
    rule: cause.reason === "automation" ? cause.rule : null,
    reply: cause.reason === "automation" ? cause.reply : null,
    limits: state.kind === "throttled" ? limitsInFileForm(state.limits) : null,
    until: new Date(state.until).toISOString(),
  };
}
