import { Buffer } from "node:buffer";
import { type Context, Hono } from "hono";
import { describeRoute, resolver, validator } from "hono-openapi";
import * as v from "valibot";
import { suppressionInputSchema, suppressionOf } from "../queue/suppression-input.ts";
import {
  formatScope,
  parseScope,
  type Suppression,
  type SuppressionCursor,
  type SuppressionStore,
} from "../queue/suppressions.ts";
import type { AuthEnv } from "./auth.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { problem } from "./problem.ts";
import { pageLimit, queryHook, validJsonBody } from "./validation.ts";

export type SuppressionRouteDeps = Pick<SuppressionStore, "add" | "list" | "remove">;

const entrySchema = v.pipe(
  v.object({
    address: v.string(),
    scope: v.pipe(v.string(), v.description("global, principal:ID or domain:DOMAIN")),
    reason: v.string(),
    source: v.pipe(
      v.nullable(v.object({ event: v.string(), message_id: v.nullable(v.string()) })),
      v.description("the event that added it (bounced, complained, unsubscribed) and its message"),
    ),
    created_at: v.string(),
    expires_at: v.nullable(v.string()),
  }),
  v.metadata({ ref: "Suppression" }),
);

const pageSchema = v.object({
  suppressions: v.array(entrySchema),
  next_cursor: v.pipe(v.nullable(v.string()), v.description("pass as `cursor` for the next page; null: the last")),
});

const listQuerySchema = v.object({
  cursor: v.optional(v.pipe(v.string(), v.description("`next_cursor` of the previous page"))),
  limit: pageLimit,
  address: v.optional(v.pipe(v.string(), v.description("only this address's entries"))),
});

const deleteQuerySchema = v.object({
  scope: v.optional(
    v.pipe(
      v.string(),
      v.check((text) => parseScope(text) !== undefined, "expected global, principal:ID or domain:DOMAIN"),
      v.description("remove only the entry of this scope; absent: every scope"),
    ),
  ),
});

const iso = (ms: number) => new Date(ms).toISOString();

export function suppressionJson(e: Suppression): v.InferOutput<typeof entrySchema> {
  return {
    address: e.address,
    scope: formatScope(e.scope),
    reason: e.reason,
    source: e.source ? { event: e.source.event, message_id: e.source.messageId ?? null } : null,
    created_at: iso(e.createdAt),
    expires_at: e.expiresAt === undefined ? null : iso(e.expiresAt),
  };
}

/** A page's `next_cursor`; the dashboard's pages use the same. */
export const encodeCursor = (cursor: SuppressionCursor) => Buffer.from(JSON.stringify(cursor)).toString("base64url");

export function decodeCursor(text: string): SuppressionCursor | undefined {
  try {
    const value = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as unknown;
    const valid = Array.isArray(value) && value.length === 3 && value.every((part) => typeof part === "string");
    return valid ? (value as unknown as SuppressionCursor) : undefined;
  } catch {
    return undefined;
  }
}

const adminOnly = { 401: "Missing or unknown bearer token", 403: 'The token lacks the "admin" scope' };

/** GET/POST /v1/suppressions and DELETE /v1/suppressions/:address: the suppression list. */
export function suppressionRoutes(store: SuppressionRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();
  app.get(
    "/",
    describeRoute({
      tags: ["suppressions"],
      summary: "List the suppression list",
      description: "Entries in address order, a page at a time; expired entries are listed until removed.",
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("A page of entries", pageSchema),
        ...problemResponses({ ...adminOnly, 400: "Invalid query" }),
      },
    }),
    validator("query", listQuerySchema, queryHook),
    async (c) => {
      const query = c.req.valid("query");
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      if (query.cursor !== undefined && after === undefined) {
        return problem(c, 400, "Bad Request", "invalid query", [{
          field: "cursor",
          message: "expected the next_cursor of a previous page",
        }]);
      }
      const page = await store.list({ after, limit: Number(query.limit), address: query.address });
      const body: v.InferOutput<typeof pageSchema> = {
        suppressions: page.entries.map(suppressionJson),
        next_cursor: page.next ? encodeCursor(page.next) : null,
      };
      return c.json(body);
    },
  );

  app.post(
    "/",
    describeRoute({
      tags: ["suppressions"],
      summary: "Suppress an address",
      description: "Mail to the address is accepted but never sent (its recipient is `suppressed`, with an event " +
        "naming this entry). Adding an entry that exists replaces its reason and expiry. Reason default: manual.",
      security: [{ bearer: ["admin"] }],
      requestBody: { content: { "application/json": { schema: resolver(suppressionInputSchema) } } },
      responses: {
        201: json("Added", entrySchema),
        ...problemResponses({ ...adminOnly, 400: "The body is not JSON", 422: "Invalid fields (every one listed)" }),
      },
    }),
    async (c) => {
      const parsed = await validJsonBody(c, suppressionInputSchema, {
        title: "Invalid suppression",
        example: '{"address": "bob@example.com"}',
      });
      if (!parsed.ok) return parsed.response;
      const entry = suppressionOf(parsed.output, "manual");
      await store.add(entry);
      const [stored] = (await store.list({ limit: 1000, address: entry.address })).entries
        .filter((e) => formatScope(e.scope) === formatScope(entry.scope));
      return c.json(suppressionJson(stored!), 201);
    },
  );

  const remove = async (c: Context<AuthEnv>, address: string, scope: string | undefined) => {
    const removed = await store.remove(address, scope === undefined ? undefined : parseScope(scope));
    if (removed === 0) return problem(c, 404, "Not Found", `${JSON.stringify(address)} is not on the suppression list`);
    return c.json({ removed });
  };
  const removal = (path: string) =>
    describeRoute({
      tags: ["suppressions"],
      summary: "Unsuppress an address",
      description: `Removes the address's entries (of every scope, or of \`scope\`): mail to it is sent again. ` +
        `The address goes in the ${path}.`,
      security: [{ bearer: ["admin"] }],
      responses: {
        200: json("Removed", v.object({ removed: v.number() })),
        ...problemResponses({ ...adminOnly, 400: "Invalid query", 404: "The address is not on the list" }),
      },
    });
  app.delete(
    "/:address",
    removal("path"),
    validator("query", deleteQuerySchema, queryHook),
    (c) => remove(c, c.req.param("address") ?? "", c.req.valid("query").scope),
  );
  app.delete(
    "/",
    removal("query (`?address=`)"),
    validator(
      "query",
      v.object({ ...deleteQuerySchema.entries, address: v.pipe(v.string(), v.minLength(1)) }),
      queryHook,
    ),
    (c) => remove(c, c.req.valid("query").address, c.req.valid("query").scope),
  );
  return app;
}
