import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import type { ShapingDocument } from "../shaping/load.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";

/** What the route shows: the rules in force. */
export interface ShapingRouteDeps {
  readonly document: ShapingDocument;
}

const shapingSchema = v.pipe(
  v.object({
    rules: v.pipe(
      v.record(v.string(), v.unknown()),
      v.description(
        "the rules in force in the shaping file's form (docs/shaping.md): the shipped rules, " +
          "RELAY_SHAPING_FILE over them, then the RELAY_DESTINATION_* variables over the default level",
      ),
    ),
  }),
  v.metadata({ ref: "Shaping" }),
);

/** The traffic shaping rules in force, read-only. */
export function shapingRoutes(deps: ShapingRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get(
    "/",
    describeRoute({
      tags: ["shaping"],
      summary: "The traffic shaping rules in force",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("The rules in force", shapingSchema),
        ...problemResponses({ 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' }),
      },
    }),
    (c) => c.json({ rules: deps.document }),
  );
  return app;
}
