import { Hono } from "hono";
import type { Ingress } from "../ingress/submit.ts";
import type { QueueStore } from "../queue/store.ts";
import { requireBearer } from "./auth.ts";
import { eventRoutes } from "./events.ts";
import { messageRoutes } from "./messages.ts";
import { problem } from "./problem.ts";

export interface HttpDeps {
  readonly ingress: Ingress;
  readonly store: QueueStore;
  readonly adminTokenHash: () => string;
  readonly maxMessageBytes: number;
  readonly maxRecipients: number;
  /** Readiness: the database answers and the listeners are up. */
  readonly ready: () => Promise<boolean>;
}

/** The HTTP API: routes only translate between JSON and ingress, queue and events. */
export function createHttpApp(deps: HttpDeps): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => ((await deps.ready()) ? c.json({ status: "ready" }) : c.json({ status: "not ready" }, 503)));
  app.use("/v1/*", requireBearer(deps.adminTokenHash));
  app.route("/v1/messages", messageRoutes(deps));
  app.route("/v1/events", eventRoutes(deps.store));
  app.notFound((c) => problem(c, 404, "Not Found", `no route ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => {
    console.error(error);
    return problem(c, 500, "Internal Server Error", "the request failed; see the relay's log");
  });
  return app;
}
