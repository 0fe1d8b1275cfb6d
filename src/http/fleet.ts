import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import { type FleetSource, fleetView, NODE_STATUSES } from "../fleet/fleet-view.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";

/** The same source the dashboard reads. */
export type FleetRouteDeps = FleetSource;

const iso = (ms: number) => new Date(ms).toISOString();
const timestamp = v.pipe(v.string(), v.description("RFC 3339 time"));

const nodeSchema = v.pipe(
  v.object({
    id: v.string(),
    self: v.pipe(v.boolean(), v.description("this is the node that answered")),
    status: v.pipe(
      v.picklist(NODE_STATUSES),
      v.description("stopped: said so when it stopped; down: no heartbeat for RELAY_NODE_DEAD_AFTER"),
    ),
    source_ip: v.pipe(v.nullable(v.string()), v.description("RELAY_SOURCE_IP: the address it sends from")),
    hostname: v.string(),
    api_url: v.pipe(v.nullable(v.string()), v.description("RELAY_NODE_URL: where the other nodes reach its API")),
    version: v.string(),
    started_at: timestamp,
    heartbeat_at: timestamp,
    queue_depth: v.pipe(v.number(), v.description("recipients in its queue at its last heartbeat")),
  }),
  v.metadata({ ref: "FleetNode" }),
);

const fleetSchema = v.pipe(
  v.object({
    node: v.pipe(v.string(), v.description("the node that answered")),
    shared: v.pipe(v.boolean(), v.description("whether the node shares its state with a fleet (RELAY_SHARED_DB_URL)")),
    partitioned_since: v.pipe(
      v.nullable(timestamp),
      v.description("since when this node cannot reach the shared server (it works from its replica); null: it can"),
    ),
    outbox: v.pipe(
      v.nullable(v.number()),
      v.description("writes for the shared state waiting on this node for the server; null for a node alone"),
    ),
    nodes: v.array(nodeSchema),
  }),
  v.metadata({ ref: "Fleet" }),
);

/** The fleet's nodes as the registry has them, and this node's link to the shared server. */
export function fleetRoutes(deps: FleetRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get(
    "/",
    describeRoute({
      tags: ["fleet"],
      summary: "The nodes of the fleet and their state",
      description: "A node alone lists itself. The list is read from this node's replica of the shared state.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The fleet", fleetSchema),
        ...problemResponses({ 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' }),
      },
    }),
    async (c) => {
      const fleet = await fleetView(deps);
      const body: v.InferOutput<typeof fleetSchema> = {
        node: fleet.self,
        shared: fleet.shared,
        partitioned_since: fleet.partitionedSince === undefined ? null : iso(fleet.partitionedSince),
        outbox: fleet.outbox ?? null,
        nodes: fleet.nodes.map((n) => ({
          id: n.id,
          self: n.self,
          status: n.status,
          source_ip: n.sourceIp,
          hostname: n.hostname,
          api_url: n.apiUrl,
          version: n.version,
          started_at: iso(n.startedAt),
          heartbeat_at: iso(n.heartbeatAt),
          queue_depth: n.queueDepth,
        })),
      };
      return c.json(body);
    },
  );
  return app;
}
