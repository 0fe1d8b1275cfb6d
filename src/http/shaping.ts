import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import type { ShapingDocument, ShapingError } from "../shaping/load.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { problem } from "./problem.ts";

/** Where the operator's layer of the rules in force comes from. */
export type ShapingOriginView =
  | { readonly kind: "shipped" }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "api"; readonly text: string; readonly at: number };

/** What the routes show and change: the rules in force and the operator's layer. */
export interface ShapingRouteDeps {
  current(): { readonly document: ShapingDocument; readonly origin: ShapingOriginView };
  /** Replace the operator's layer with a shaping file; nothing changes when it holds a problem. */
  put(text: string): Promise<{ readonly ok: true } | { readonly ok: false; readonly errors: readonly ShapingError[] }>;
  /** Back to RELAY_SHAPING_FILE, or the shipped rules. */
  reset(): Promise<void>;
}

const shapingSchema = v.pipe(
  v.object({
    rules: v.pipe(
      v.record(v.string(), v.unknown()),
      v.description(
        "the rules in force in the shaping file's form (docs/shaping.md): the shipped rules, the operator's " +
          "layer over them (the last PUT /v1/shaping, else RELAY_SHAPING_FILE), then the RELAY_DESTINATION_* " +
          "variables over the default level",
      ),
    ),
    source: v.pipe(
      v.object({
        kind: v.picklist(["shipped", "file", "api"]),
        path: v.optional(v.string()),
        text: v.optional(v.pipe(v.string(), v.description("the last PUT body, as given"))),
        updated_at: v.optional(v.string()),
      }),
      v.description("where the operator's layer comes from: none, RELAY_SHAPING_FILE, or PUT /v1/shaping"),
    ),
  }),
  v.metadata({ ref: "Shaping" }),
);

const adminOnly = { 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' };

/** The traffic shaping rules in force: shown, replaced without a restart, or returned to the file. */
export function shapingRoutes(deps: ShapingRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  const shown = () => {
    const { document, origin } = deps.current();
    const source = origin.kind === "api"
      ? { kind: origin.kind, text: origin.text, updated_at: new Date(origin.at).toISOString() }
      : origin;
    return { rules: document, source };
  };
  app.get(
    "/",
    describeRoute({
      tags: ["shaping"],
      summary: "The traffic shaping rules in force",
      security: [{ bearer: ["admin"] }],
      responses: { 200: json("The rules in force", shapingSchema), ...problemResponses(adminOnly) },
    }),
    (c) => c.json(shown()),
  );
  app.put(
    "/",
    describeRoute({
      tags: ["shaping"],
      summary: "Replace the operator's shaping rules",
      description: "The body is a shaping file (YAML or JSON, docs/shaping.md), laid over the shipped rules as " +
        "RELAY_SHAPING_FILE is, in place of the file. It applies at once, without a restart: to each destination's " +
        "next connections and messages. It is kept in the database, so a restart keeps it. A body with any " +
        "problem changes nothing: 422 lists each problem with its line and field.",
      security: [{ bearer: ["admin"] }],
      requestBody: {
        required: true,
        content: { "application/yaml": { schema: { type: "string" } }, "application/json": { schema: {} } },
      },
      responses: {
        200: json("The rules now in force", shapingSchema),
        ...problemResponses({ ...adminOnly, 422: "The rules hold problems; nothing changed" }),
      },
    }),
    async (c) => {
      const result = await deps.put(await c.req.text());
      if (!result.ok) {
        return problem(
          c,
          422,
          "Invalid shaping rules",
          "nothing changed; each problem is listed with its line and field",
          result.errors.map((e) => ({ field: e.path === "" ? "(body)" : e.path, line: e.line, message: e.message })),
        );
      }
      return c.json(shown());
    },
  );
  app.delete(
    "/",
    describeRoute({
      tags: ["shaping"],
      summary: "Forget the rules given through PUT",
      description: "RELAY_SHAPING_FILE (as read at start), or the shipped rules, apply again, at once.",
      security: [{ bearer: ["admin"] }],
      responses: { 200: json("The rules now in force", shapingSchema), ...problemResponses(adminOnly) },
    }),
    async (c) => {
      await deps.reset();
      return c.json(shown());
    },
  );
  return app;
}
