import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { MemoryBudget } from "../core/memory-budget.ts";
import { receivingMemory } from "./receiving-memory.ts";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import { type Clock, systemClock } from "../core/clock.ts";
import { type DashboardDeps, dashboardRoutes } from "../dashboard/routes.tsx";
import type { LiteralPolicy } from "../ingress/access.ts";
import { newId } from "../core/id.ts";
import { errorText, type Logger } from "../core/log.ts";
import type { Ingress } from "../ingress/submit.ts";
import type { EventLog } from "../queue/event-log.ts";
import type { QueueStore } from "../queue/store.ts";
import { type Authenticator, type AuthEnv, requireBearer } from "./auth.ts";
import { renderDocs } from "./docs.ts";
import { type DomainRouteDeps, domainRoutes } from "./domains.ts";
import { type DrainRouteDeps, drainRoutes } from "./drain.ts";
import { eventRoutes } from "./events.ts";
import { nodeStatus } from "../fleet/fleet-view.ts";
import { sharedUnreachable } from "../fleet/unreachable.ts";
import { type FleetRouteDeps, fleetRoutes } from "./fleet.ts";
import type { IdempotencyStore } from "./idempotency.ts";
import { messageRoutes } from "./messages.ts";
import { nodeRouting } from "./node-routing.ts";
import { type MetricsRouteDeps, metricsRoutes } from "./metrics.ts";
import { type MessageSteeringDeps, messageSteeringRoutes } from "./message-steering.ts";
import { openApiDocument } from "./openapi.ts";
import { json } from "./openapi-helpers.ts";
import { problem } from "./problem.ts";
import { type QueueRouteDeps, queueRoutes } from "./queue.ts";
import { queueListingRoutes } from "./queue-listing.ts";
import { type ShapingRouteDeps, shapingRoutes } from "./shaping.ts";
import { type TraceRouteDeps, traceRoutes } from "./trace.ts";
import { type SuppressionRouteDeps, suppressionRoutes } from "./suppressions.ts";
import { type UnsubscribeRouteDeps, unsubscribeRoutes } from "./unsubscribe.ts";
import { type WarmupRouteDeps, warmupRoutes } from "./warmup.ts";
import { type WebhookRouteDeps, webhookRoutes } from "./webhooks.ts";

export interface HttpDeps {
  /** The one way into the queue (`Ingress`). */
  readonly ingress: Pick<Ingress, "submit">;
  readonly store: Pick<QueueStore, "messageView" | "control"> & { readonly events: Pick<EventLog, "listEvents"> };
  /** Bearer token to principal: e.g. `anyAuthenticator(adminAuthenticator(...), apiKeyAuthenticator(...))`. */
  readonly authenticate: Authenticator;
  /** Answers kept for Idempotency-Key (`CredentialStore`). */
  readonly idempotency: IdempotencyStore;
  readonly maxMessageBytes: number;
  /** Memory that messages being received share (RELAY_RECEIVING_MEMORY); a send that does not fit is answered 503. */
  readonly receivingMemory?: MemoryBudget;
  readonly maxRecipients: number;
  /** Which address literals envelope addresses may name (ingress/access.ts). */
  readonly literals: LiteralPolicy;
  /** RELAY_PRIORITY_HEADER: the header field that may name a message's priority lane. */
  readonly priorityHeader?: string;
  /** Readiness: the database answers and the listeners are up. */
  readonly ready: () => Promise<boolean>;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Shown in /openapi.json; default "0.0.0". */
  readonly version?: string;
  /** Sending domains and DKIM keys (`DomainService`); without it, /v1/domains is not served. */
  readonly domains?: DomainRouteDeps;
  /** The traffic shaping rules in force; without them, /v1/shaping is not served. */
  readonly shaping?: ShapingRouteDeps;
  /** The suppression list (`SuppressionStore`); without it, /v1/suppressions is not served. */
  readonly suppressions?: SuppressionRouteDeps;
  /** IP warmup's state; without it, /v1/warmup is not served. */
  readonly warmup?: WarmupRouteDeps;
  /** The queue by destination and its steering; without it, /v1/queue is not served. */
  // deno-lint-ignore no-explicit-any -- the destination type is the provider's own; the routes pass it back unchanged
  readonly queue?: QueueRouteDeps<any>;
  /** Hold, release, retry, bounce and cancel a message or one recipient; without it, those routes are not served. */
  readonly messageSteering?: Omit<MessageSteeringDeps, "store">;
  /** Unsubscribing (src/unsubscribe/): /u/:token, the target of bulk mail's List-Unsubscribe link; without it, not served. */
  readonly unsubscribe?: UnsubscribeRouteDeps;
  /** The node's metrics; without them, /metrics is not served. */
  readonly metrics?: MetricsRouteDeps;
  /** Webhook endpoints (`Webhooks`, src/events/webhooks.ts); without them, /v1/webhooks is not served. */
  readonly webhooks?: WebhookRouteDeps;
  /** The dashboard's services; without them, `/` and its pages are not served. */
  readonly dashboard?: DashboardDeps;
  /** The node registry and this node's link to the shared server; without them, /v1/fleet is not served. */
  readonly fleet?: FleetRouteDeps;
  /** `relay drain`: this node stops taking new mail; without it, /v1/drain is not served and the node always takes mail. */
  readonly drain?: DrainRouteDeps;
  /** SMTP session traces switched on and off at run time; without them, /v1/trace is not served. */
  readonly trace?: TraceRouteDeps;
  /** Where unexpected errors go, each with its request's id. */
  readonly log: Logger;
}

/** How long a read about another node waits for it. */
const NODE_REQUEST_TIMEOUT_MS = 10_000;

const statusSchema = v.pipe(v.object({ status: v.string() }), v.metadata({ ref: "Status" }));
const readySchema = v.pipe(
  v.object({
    status: v.string(),
    partitioned_since: v.optional(
      v.pipe(
        v.string(),
        v.description("in a fleet: since when the node cannot reach the shared server; it still accepts and delivers"),
      ),
    ),
  }),
  v.metadata({ ref: "Readiness" }),
);

/** The HTTP API: routes only translate between JSON and ingress, queue and events. */
export function createHttpApp(deps: HttpDeps): Hono<AuthEnv> {
  const clock = deps.clock ?? systemClock;
  const app = new Hono<AuthEnv>();
  const document = openApiDocument(app, deps.version ?? "0.0.0");

  // Every answer carries X-Request-Id (a proxy's own, when it sends one); the log names it.
  app.use(requestId({ generator: () => newId() }));

  app.get(
    "/healthz",
    describeRoute({
      tags: ["meta"],
      summary: "Liveness",
      security: [],
      responses: { 200: json("The process answers", statusSchema) },
    }),
    (c) => c.json({ status: "ok" }),
  );
  app.get(
    "/readyz",
    describeRoute({
      tags: ["meta"],
      summary: "Readiness",
      description: "Ready when the database answers and the listeners are up. A node of a fleet cut off from " +
        "the shared server is still ready (it works from its replica) and says since when. A draining node " +
        "(POST /v1/drain) is not ready: it takes no new mail (status `draining`).",
      security: [],
      responses: { 200: json("Ready", readySchema), 503: json("Not ready", readySchema) },
    }),
    async (c) => {
      const since = deps.fleet?.partitionedSince();
      const partition = since === undefined ? {} : { partitioned_since: new Date(since).toISOString() };
      // A load balancer sends no more clients to a node that refuses their mail.
      if (deps.drain?.drain.since !== undefined) return c.json({ status: "draining", ...partition }, 503);
      return (await deps.ready())
        ? c.json({ status: "ready", ...partition })
        : c.json({ status: "not ready", ...partition }, 503);
    },
  );
  app.get(
    "/openapi.json",
    describeRoute({
      tags: ["meta"],
      summary: "This API described (OpenAPI 3.1)",
      security: [],
      responses: { 200: { description: "The OpenAPI document", content: { "application/json": {} } } },
    }),
    async (c) => c.json(await document()),
  );
  app.get(
    "/docs",
    describeRoute({
      tags: ["meta"],
      summary: "This API described (HTML)",
      security: [],
      responses: { 200: { description: "A self-contained reference page", content: { "text/html": {} } } },
    }),
    async (c) => c.html(renderDocs(await document())),
  );

  // Reached by receivers and by the recipient's browser, authenticated by its token alone (RFC 8058).
  if (deps.unsubscribe) app.route("/u", unsubscribeRoutes(deps.unsubscribe));

  // Bearer like the API, with the read scope: a scraper sends it (Prometheus' bearer_token); docs/metrics.md.
  if (deps.metrics) {
    app.use("/metrics", requireBearer(deps.authenticate));
    app.route("/metrics", metricsRoutes(deps.metrics));
  }

  app.use("/v1/*", requireBearer(deps.authenticate));
  // JSON with base64 attachments is about 4/3 of the message; refuse far larger bodies before reading them.
  const largestBody = Math.ceil((deps.maxMessageBytes * 4) / 3) + 1024 * 1024;
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: largestBody,
      onError: (c) =>
        problem(
          c,
          413,
          "Request too large",
          `the body is far larger than RELAY_MAX_MESSAGE_BYTES (${deps.maxMessageBytes})`,
        ),
    }),
  );
  if (deps.fleet) {
    const { fleet } = deps;
    // Reads about the queue and the events, for another node or all of them (src/http/node-routing.ts).
    const routing = nodeRouting({
      self: fleet.self,
      nodes: fleet.nodes,
      answers: (node) => ["up", "draining"].includes(nodeStatus(node, fleet.deadAfterMs, fleet.now())),
      timeoutMs: NODE_REQUEST_TIMEOUT_MS,
    });
    for (const path of ["/v1/queue", "/v1/queue/*", "/v1/events", "/v1/messages/:id", "/v1/warmup"]) {
      app.use(path, routing);
    }
  }
  if (deps.receivingMemory) app.post("/v1/messages", receivingMemory(deps.receivingMemory, largestBody));
  app.route(
    "/v1/messages",
    messageRoutes({
      ingress: deps.ingress,
      store: deps.store,
      idempotency: deps.idempotency,
      log: deps.log,
      clock,
      maxMessageBytes: deps.maxMessageBytes,
      maxRecipients: deps.maxRecipients,
      literals: deps.literals,
      priorityHeader: deps.priorityHeader,
      draining: () => deps.drain?.drain.since !== undefined,
    }),
  );
  if (deps.messageSteering) {
    app.route("/v1/messages", messageSteeringRoutes({ store: deps.store, ...deps.messageSteering }));
  }
  app.route("/v1/events", eventRoutes(deps.store.events));
  if (deps.domains) app.route("/v1/domains", domainRoutes(deps.domains));
  if (deps.shaping) app.route("/v1/shaping", shapingRoutes(deps.shaping));
  if (deps.warmup) app.route("/v1/warmup", warmupRoutes(deps.warmup));
  if (deps.queue) {
    app.route("/v1/queue/messages", queueListingRoutes(deps.queue));
    app.route("/v1/queue", queueRoutes(deps.queue));
  }
  if (deps.suppressions) app.route("/v1/suppressions", suppressionRoutes(deps.suppressions));
  if (deps.webhooks) app.route("/v1/webhooks", webhookRoutes(deps.webhooks));
  // Its own sessions (a cookie), not bearer tokens: its paths are outside /v1.
  if (deps.dashboard) app.route("/", dashboardRoutes(deps.dashboard));
  if (deps.trace) app.route("/v1/trace", traceRoutes(deps.trace));
  if (deps.fleet) app.route("/v1/fleet", fleetRoutes(deps.fleet));
  if (deps.drain) app.route("/v1/drain", drainRoutes(deps.drain));
  app.notFound((c) => problem(c, 404, "Not Found", `no route ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => {
    // A middleware's own refusal (hono/csrf's 403 for a form from another origin) is the answer, not a failure.
    if (error instanceof HTTPException) return error.getResponse();
    // A change to the fleet's shared state while this node cannot reach its server: nothing was changed.
    if (deps.fleet?.shared && sharedUnreachable(error)) {
      c.header("Retry-After", "10");
      return problem(
        c,
        503,
        "Shared state unreachable",
        "this node cannot reach the fleet's shared database now, so nothing was changed: " +
          "try again later or through another node (GET /v1/fleet says since when)",
      );
    }
    const request = c.get("requestId");
    deps.log("error", "HTTP request failed", {
      request,
      method: c.req.method,
      path: c.req.path,
      error: errorText(error),
    });
    return problem(
      c,
      500,
      "Internal Server Error",
      `the request failed; the relay's log has the cause under request ${request}`,
    );
  });
  return app;
}
