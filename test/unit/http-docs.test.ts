// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import type { QueueStore } from "../../src/queue/store.ts";
import { createHttpApp } from "../../src/http/app.ts";
import { renderDocs } from "../../src/http/docs.ts";
import { rawMessageSchema, structuredMessageSchema } from "../../src/http/message-schema.ts";

const app = createHttpApp({
  ingress: { submit: async () => ({ id: "ID", suppressed: new Map() }) },
  store: {
    messageView: async () => undefined,
    control: {} as QueueStore["control"],
    events: { listEvents: async () => [] },
  },
  authenticate: async () => undefined,
  idempotency: { findResponse: async () => undefined, storeResponse: async () => {} },
  maxMessageBytes: 1000,
  maxRecipients: 10,
  literals: { routes: [], ownAddresses: () => [] },
  ready: async () => true,
  queue: {
    summary: async () => ({ destinations: [], domains: [], truncated: false }),
    resolve: async () => ({ found: false, reason: "none" }),
    suspend: async () => 0,
    resume: async () => 0,
    retry: async () => 0,
    bounce: async () => 0,
    hold: async () => 0,
    release: async () => 0,
    list: async () => ({ recipients: [] }),
    now: () => 0,
  },
  messageSteering: {
    hold: async () => 0,
    release: async () => 0,
    retry: async () => 0,
    bounce: async () => 0,
    cancel: async () => 0,
  },
  drain: {
    self: "node-1",
    drain: {
      since: undefined,
      start: async () => {},
      left: async () => ({ queued: 0, deferred: 0, held: 0, total: 0 }),
      handsOver: false,
    },
  },
  version: "9.9.9",
  log: (level, message, fields) => assert.fail(`unexpected log line: ${level} ${message} ${JSON.stringify(fields)}`),
});

async function openapi(): Promise<any> {
  const response = await app.request("/openapi.json");
  assert.equal(response.status, 200, "no token needed");
  assert.match(response.headers.get("content-type")!, /^application\/json/);
  return JSON.parse(await response.text());
}

/** The top-level field names of a valibot object schema (inside its pipe). */
function fieldNames(schema: typeof rawMessageSchema | typeof structuredMessageSchema): string[] {
  return Object.keys(schema.pipe[0].entries);
}

function resolve(doc: any, schema: any): any {
  return schema.$ref ? doc.components.schemas[schema.$ref.split("/").at(-1)] : schema;
}

describe("GET /openapi.json", () => {
  it("is OpenAPI 3.1 with a bearer scheme, components and POST /v1/messages", async () => {
    const doc = await openapi();
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(doc.info.version, "9.9.9");
    assert.deepEqual(doc.components.securitySchemes.bearer, {
      type: "http",
      scheme: "bearer",
      description: doc.components.securitySchemes.bearer.description,
    });
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    const post = doc.paths["/v1/messages"].post;
    assert.ok(post, "POST /v1/messages");
    assert.deepEqual(post.security, [{ bearer: ["send"] }]);
    assert.ok(
      post.responses["202"] && post.responses["422"] && post.responses["409"] && post.responses["401"] &&
        post.responses["403"],
    );
    assert.ok(post.parameters.some((p: any) => p.name === "Idempotency-Key" && p.in === "header"));
    const body = post.requestBody.content["application/json"].schema;
    assert.deepEqual(
      body.anyOf.map((s: any) => s.$ref),
      ["#/components/schemas/RawMessage", "#/components/schemas/StructuredMessage"],
    );
    assert.equal(resolve(doc, post.responses["202"].content["application/json"].schema).properties.id.type, "string");
    assert.equal(doc.paths["/v1/messages/{id}"].get.security[0].bearer[0], "read");
    assert.equal(doc.paths["/v1/messages/{id}"].delete.security[0].bearer[0], "send");
    assert.ok(
      doc.paths["/v1/messages/{id}"].get.parameters.some((p: any) => p.name === "id" && p.in === "path" && p.required),
    );
    const eventParams = doc.paths["/v1/events"].get.parameters.map((p: any) => `${p.in}:${p.name}`);
    assert.deepEqual(eventParams.sort(), [
      "query:after",
      "query:limit",
      "query:message",
      "query:recipient",
      "query:tag",
      "query:type",
    ]);
    for (const open of ["/healthz", "/readyz", "/openapi.json", "/docs"]) {
      assert.deepEqual(doc.paths[open].get.security, [], open);
    }
  });

  it("is generated from the valibot schemas: every field of each message schema is in its component", async () => {
    const doc = await openapi();
    const raw = doc.components.schemas.RawMessage;
    const structured = doc.components.schemas.StructuredMessage;
    assert.deepEqual(Object.keys(raw.properties).sort(), fieldNames(rawMessageSchema).sort());
    assert.deepEqual(Object.keys(structured.properties).sort(), fieldNames(structuredMessageSchema).sort());
    assert.ok(fieldNames(structuredMessageSchema).includes("reply_to"));
    assert.deepEqual(raw.required.sort(), ["mail_from", "raw", "rcpt_to"]);
    assert.equal(raw.additionalProperties, false, "unknown fields are refused, and the document says so");
    assert.deepEqual(structured.properties.priority.enum, ["transactional", "bulk"]);
    assert.equal(structured.properties.send_at.format, "date-time");
    assert.equal(resolve(doc, structured.properties.attachments.items).properties.content.contentEncoding, "base64");
  });

  it("documents every route the app serves", async () => {
    const doc = await openapi();
    const served = app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}").replace(/(.)\/$/, "$1")}`);
    for (const route of new Set(served)) {
      const [method, path] = route.split(" ");
      assert.ok(doc.paths[path!]?.[method!], `${route} is documented`);
    }
  });

  it("documents the drain (admin) and POST /v1/messages' 503 while draining", async () => {
    const doc = await openapi();
    assert.deepEqual(doc.paths["/v1/drain"].post.security, [{ bearer: ["admin"] }]);
    assert.deepEqual(
      Object.keys(
        resolve(doc, doc.paths["/v1/drain"].get.responses["200"].content["application/json"].schema).properties,
      ),
      ["node", "draining", "since", "hands_over", "left"],
    );
    assert.match(doc.paths["/v1/messages"].post.responses["503"].description, /draining/);
  });

  it("documents the queue listing's filters and the steering of a message and a recipient", async () => {
    const doc = await openapi();
    const listing = doc.paths["/v1/queue/messages"].get;
    assert.deepEqual(listing.security, [{ bearer: ["admin"] }]);
    assert.deepEqual(
      listing.parameters.map((p: any) => p.name).toSorted(),
      ["cursor", "domain", "limit", "older_than", "recipient", "sender", "state", "tag"],
    );
    const page = resolve(doc, listing.responses["200"].content["application/json"].schema);
    assert.deepEqual(page.required.toSorted(), ["next_cursor", "recipients"]);
    const action = (path: string) => doc.paths[path].post.parameters.find((p: any) => p.name === "action").schema.enum;
    assert.deepEqual(action("/v1/messages/{id}/{action}"), ["hold", "release", "retry", "bounce"]);
    assert.deepEqual(action("/v1/messages/{id}/recipients/{recipient}/{action}"), [
      "hold",
      "release",
      "retry",
      "bounce",
    ]);
    assert.ok(doc.paths["/v1/messages/{id}/recipients/{recipient}"].delete);
    assert.deepEqual(
      action("/v1/queue/{destination}/{action}"),
      ["suspend", "resume", "retry", "bounce", "hold", "release"],
    );
  });

  it("a field added to a schema shows up in the document", async () => {
    const { generateSpecs, describeRoute, resolver } = await import("hono-openapi");
    const { Hono } = await import("hono");
    const extended = v.pipe(
      v.strictObject({ ...structuredMessageSchema.pipe[0].entries, amp_html: v.optional(v.string()) }),
      v.metadata({ ref: "Extended" }),
    );
    const probe = new Hono();
    probe.post(
      "/x",
      describeRoute({ requestBody: { content: { "application/json": { schema: resolver(extended) } } } }),
      (c) => c.body(null),
    );
    const doc: any = await generateSpecs(probe);
    assert.ok("amp_html" in doc.components.schemas.Extended.properties);
    assert.ok("from" in doc.components.schemas.Extended.properties);
  });
});

describe("GET /docs", () => {
  it("is a self-contained HTML reference of every operation, without authentication", async () => {
    const response = await app.request("/docs");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, /^text\/html/);
    const html = await response.text();
    assert.match(html, /^<!doctype html>/);
    assert.ok(html.includes("<code>/v1/messages</code>"));
    assert.ok(html.includes("<code>/v1/messages/{id}</code>"));
    assert.ok(html.includes("<code>/v1/events</code>"));
    assert.match(html, /<span class="method post">POST<\/span>/);
    assert.match(html, /bearer: send scope/);
    assert.ok(html.includes('id="schema-StructuredMessage"'));
    for (const field of fieldNames(structuredMessageSchema)) assert.ok(html.includes(`<code>${field}</code>`), field);
    assert.ok(html.includes("Idempotency-Key"));
    assert.doesNotMatch(html, /<script/i, "no scripts");
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i, "nothing from elsewhere");
    assert.doesNotMatch(html, /<link\b/i);
  });

  it("escapes what it renders", () => {
    const html = renderDocs({
      openapi: "3.1.0",
      info: { title: "<script>alert(1)</script>", version: "1" },
      paths: { "/x": { get: { summary: "a <b> & `c`", responses: { 200: { description: '"q"' } } } } },
    } as any);
    assert.ok(!html.includes("<script>alert"));
    assert.ok(html.includes("&#60;script&#62;"));
    assert.ok(html.includes("a &#60;b&#62; &#38; <code>c</code>"));
  });
});
