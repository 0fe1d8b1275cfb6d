import { Hono } from "hono";
import type { QueueStore } from "../queue/store.ts";
import { problem } from "./problem.ts";

/** GET /v1/events?after=CURSOR&limit=N: the durable log in order; `next` is the cursor to resume from. */
export function eventRoutes(store: QueueStore): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    const after = c.req.query("after") ?? "0";
    const limit = c.req.query("limit") ?? "100";
    const errors = [];
    if (!/^\d+$/.test(after)) errors.push({ field: "after", message: `expected a cursor (a non-negative integer), got ${JSON.stringify(after)}` });
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000) {
      errors.push({ field: "limit", message: `expected an integer 1-1000, got ${JSON.stringify(limit)}` });
    }
    if (errors.length > 0) return problem(c, 400, "Bad Request", "invalid query", errors);
    const rows = await store.listEvents(Number(after), Number(limit));
    return c.json({
      events: rows.map((e) => ({
        id: e.id,
        cursor: String(e.id),
        at: new Date(e.at).toISOString(),
        type: e.type,
        message_id: e.messageId,
        recipient: e.recipient,
        ...e.data,
      })),
      next: String(rows.at(-1)?.id ?? after),
    });
  });
  return app;
}
