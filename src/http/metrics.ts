import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import { CONTENT_TYPE } from "../events/metrics/registry.ts";
import type { AuthEnv } from "./auth.ts";
import { problemResponses } from "./openapi-helpers.ts";

/** What the route shows (`RelayMetrics`). */
export interface MetricsRouteDeps {
  /** The Prometheus text of every metric now. */
  expose(): Promise<string>;
}

/** GET /metrics: the node's metrics in the Prometheus text format (docs/metrics.md lists them). */
export function metricsRoutes(deps: MetricsRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get(
    "/",
    describeRoute({
      tags: ["meta"],
      summary: "Metrics (Prometheus text format)",
      description: "Counters of the event log by type, provider and category; queue depth; connections in and out; " +
        "attempt and time-in-queue histograms; group commits; memory and event-loop lag. " +
        'A scraper sends a token with the "read" scope (bearer_token in its scrape config).',
      security: [{ bearer: ["read"] }],
      responses: {
        200: { description: "The metrics", content: { [CONTENT_TYPE]: {} } },
        ...problemResponses({
          401: "Missing or unknown bearer token",
          403: 'The token lacks the "read" scope',
        }),
      },
    }),
    async (c) => c.body(await deps.expose(), 200, { "content-type": CONTENT_TYPE }),
  );
  return app;
}
