// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
// ---- harness: a real HTTP app over a temporary libSQL database ----
import { join } from "node:path";
import * as v from "valibot";
import type { Lane } from "../../src/core/lane.ts";
import { parseRoutes } from "../../src/core/route.ts";
import { createLogger } from "../../src/core/log.ts";
import { createHttpApp, type HttpDeps } from "../../src/http/app.ts";
import {
  ADMIN_PRINCIPAL,
  adminAuthenticator,
  anyAuthenticator,
  apiKeyAuthenticator,
  hashToken,
  type Scope,
  scopeFor,
} from "../../src/http/auth.ts";
import { type IdempotencyStore, KeyedLock } from "../../src/http/idempotency.ts";
import { eventPageSchema } from "../../src/http/message-schema.ts";
import { type Submission } from "../../src/ingress/submit.ts";
import { CredentialStore } from "../../src/queue/credentials.ts";
import { DestinationEventStore } from "../../src/queue/destination-events.ts";
import type { Database } from "../../src/queue/database.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { destinationEvent } from "../../src/shaping/destination-event.ts";
import { shippedShaping } from "../../src/shaping/shipped.ts";
import { WarmupLedger } from "../../src/shaping/warmup-ledger.ts";
import { temporaryDatabases } from "../helpers/database.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { httpAppOver } from "../helpers/http-app.ts";

const temporaryDatabase = temporaryDatabases("relay-http-");

const ADMIN_TOKEN = "admin-token-for-tests";

interface Harness {
  readonly app: ReturnType<typeof createHttpApp>;
  readonly database: Database;
  readonly store: QueueStore;
  readonly credentials: CredentialStore;
  readonly clock: FakeClock;
  /** What the app logged: JSON lines, as the relay writes them. */
  readonly logs: string[];
  /** Make an API key; returns its secret. */
  key(id: string, scopes: Scope[], domains?: string[], lane?: Lane): Promise<string>;
  /** A request with a bearer token (admin by default) and a JSON body. */
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> },
  ): Promise<{
    status: number;
    headers: Headers;
    json: any;
    text: string;
  }>;
  /** How many messages were enqueued (one `received` event per recipient, counted per message). */
  enqueuedMessages(): Promise<number>;
}

async function fresh(overrides: Partial<HttpDeps> = {}): Promise<Harness> {
  const clock = new FakeClock(Date.now());
  const { database, dir } = await temporaryDatabase(clock.now());
  const store = new QueueStore(database, await BodySpool.open(join(dir, "spool")), clock, "node-test");
  const credentials = new CredentialStore(database, clock);
  const logs: string[] = [];
  const app = httpAppOver({ store, credentials, clock, adminToken: ADMIN_TOKEN }, {
    log: createLogger("debug", "json", (line) => logs.push(line)),
    ...overrides,
  });
  return {
    app,
    database,
    store,
    credentials,
    clock,
    logs,
    async key(id, scopes, domains = [], lane = "transactional") {
      const secret = `secret-${id}-${Math.random().toString(36).slice(2)}`;
      await credentials.addApiKey({ id, name: id, scopes, domains, lane, scan: null }, hashToken(secret));
      return secret;
    },
    async call(method, path, options = {}) {
      const headers: Record<string, string> = { "content-type": "application/json", ...options.headers };
      if (options.token !== "") headers.authorization = `Bearer ${options.token ?? ADMIN_TOKEN}`;
      const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
      const response = await app.request(path, { method, headers, body });
      const text = await response.text();
      let json: any;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: response.status, headers: response.headers, json, text };
    },
    async enqueuedMessages() {
      const events = await store.events.listEvents(0, 10_000);
      return new Set(events.filter((e) => e.type === "received").map((e) => e.messageId)).size;
    },
  };
}

const rawMessage = (over: Record<string, unknown> = {}) => ({
  mail_from: "a@sender.test",
  rcpt_to: ["r@dest.test"],
  raw: "Subject: hi\n\nbody\n",
  ...over,
});

// ---- tests -------------------------------------------------------------------------

describe("HTTP auth: principals and scopes", () => {
  let h: Harness;
  let sendKey: string;
  let readKey: string;
  let adminKey: string;
  let sentId: string;
  before(async () => {
    h = await fresh();
    sendKey = await h.key("k-send", ["send"]);
    readKey = await h.key("k-read", ["read"]);
    adminKey = await h.key("k-admin", ["admin"]);
    const sent = await h.call("POST", "/v1/messages", { body: rawMessage() });
    assert.equal(sent.status, 202);
    sentId = sent.json.id;
  });

  it("a missing, malformed or unknown token is 401 problem JSON with WWW-Authenticate", async () => {
    const variants: Record<string, string>[] = [{}, { authorization: "Basic abc" }, { authorization: "Bearer" }];
    for (const headers of variants) {
      const response = await h.app.request("/v1/events", { headers });
      assert.equal(response.status, 401);
      assert.equal(response.headers.get("content-type"), "application/problem+json");
      assert.match(response.headers.get("www-authenticate")!, /^Bearer realm="relay"/);
    }
    const unknown = await h.call("GET", "/v1/events", { token: "not-a-token" });
    assert.equal(unknown.status, 401);
    assert.match(unknown.headers.get("www-authenticate")!, /error="invalid_token"/);
    assert.equal(unknown.json.status, 401);
  });

  it("a send-only key may send and cancel but not read events or messages (403)", async () => {
    assert.equal((await h.call("POST", "/v1/messages", { token: sendKey, body: rawMessage() })).status, 202);
    const events = await h.call("GET", "/v1/events", { token: sendKey });
    assert.equal(events.status, 403);
    assert.equal(events.headers.get("content-type"), "application/problem+json");
    assert.match(events.headers.get("www-authenticate")!, /error="insufficient_scope", scope="read"/);
    assert.match(events.json.detail, /"read" scope/);
    assert.equal((await h.call("GET", `/v1/messages/${sentId}`, { token: sendKey })).status, 403);
    assert.equal((await h.call("DELETE", `/v1/messages/${sentId}`, { token: sendKey })).status, 200);
  });

  it("a read-only key may read but not send or cancel (403)", async () => {
    const before = await h.enqueuedMessages();
    const sent = await h.call("POST", "/v1/messages", { token: readKey, body: rawMessage() });
    assert.equal(sent.status, 403);
    assert.match(sent.json.detail, /"send" scope/);
    assert.equal(await h.enqueuedMessages(), before, "nothing enqueued");
    assert.equal((await h.call("DELETE", `/v1/messages/${sentId}`, { token: readKey })).status, 403);
    assert.equal((await h.call("GET", "/v1/events", { token: readKey })).status, 200);
    assert.equal((await h.call("GET", `/v1/messages/${sentId}`, { token: readKey })).status, 200);
  });

  it("everything else under /v1 needs admin; admin implies every scope", async () => {
    assert.equal((await h.call("GET", "/v1/queue", { token: sendKey })).status, 403);
    assert.equal((await h.call("GET", "/v1/suppressions", { token: readKey })).status, 403);
    assert.equal(
      (await h.call("GET", "/v1/queue", { token: adminKey })).status,
      404,
      "admin passes; the route does not exist yet",
    );
    assert.equal((await h.call("GET", "/v1/queue")).status, 404, "the admin token too");
    assert.equal((await h.call("POST", "/v1/messages", { token: adminKey, body: rawMessage() })).status, 202);
    assert.equal((await h.call("GET", "/v1/events", { token: adminKey })).status, 200);
  });

  it("a revoked key is unknown (401)", async () => {
    const secret = await h.key("k-revoked", ["send", "read"]);
    assert.equal((await h.call("GET", "/v1/events", { token: secret })).status, 200);
    assert.ok(await h.credentials.revokeApiKey("k-revoked"));
    assert.equal((await h.call("GET", "/v1/events", { token: secret })).status, 401);
  });

  it("scopeFor maps routes to scopes", () => {
    assert.equal(scopeFor("POST", "/v1/messages"), "send");
    assert.equal(scopeFor("GET", "/metrics"), "read");
    assert.equal(scopeFor("POST", "/v1/messages/"), "send");
    assert.equal(scopeFor("DELETE", "/v1/messages/01ABC"), "send");
    assert.equal(scopeFor("GET", "/v1/messages/01ABC"), "read");
    assert.equal(scopeFor("GET", "/v1/events"), "read");
    assert.equal(scopeFor("POST", "/v1/events"), "admin");
    assert.equal(scopeFor("POST", "/v1/messages/01ABC/retry"), "admin");
    assert.equal(scopeFor("POST", "/v1/queue/gmail.com/suspend"), "admin");
    assert.equal(scopeFor("GET", "/v1/webhooks"), "admin");
  });

  it("the admin authenticator compares hashes and composes with API keys", async () => {
    const admin = adminAuthenticator(() => hashToken("right"));
    assert.deepEqual(await admin("right"), ADMIN_PRINCIPAL);
    assert.equal(await admin("wrong"), undefined);
    assert.equal(await adminAuthenticator(() => "not-hex")("right"), undefined);
    const keys = apiKeyAuthenticator(async (hash) =>
      hash === hashToken("k")
        ? { id: "k1", scopes: ["read", "bogus"], domains: ["Example.COM"], lane: "bulk" as const, scan: true }
        : undefined
    );
    const both = anyAuthenticator(admin, keys);
    assert.equal((await both("right"))?.id, "admin");
    assert.deepEqual(await both("k"), {
      id: "k1",
      scopes: ["read"],
      domains: ["example.com"],
      lane: "bulk",
      scan: true,
    });
    assert.equal(await both("neither"), undefined);
  });
});

describe("HTTP auth: sender domains", () => {
  let h: Harness;
  let limited: string;
  before(async () => {
    h = await fresh();
    limited = await h.key("k-limited", ["send", "read"], ["sender.test"]);
  });

  it("a domain-limited key may send from its own domain (any case), raw or structured", async () => {
    assert.equal(
      (await h.call("POST", "/v1/messages", { token: limited, body: rawMessage({ mail_from: "a@Sender.TEST" }) }))
        .status,
      202,
    );
    const structured = await h.call("POST", "/v1/messages", {
      token: limited,
      body: { from: "Me <me@sender.test>", to: ["r@dest.test"], subject: "s", text: "t" },
    });
    assert.equal(structured.status, 202);
  });

  it("another sender domain is 403 sender domain not allowed, and nothing is enqueued", async () => {
    const before = await h.enqueuedMessages();
    const raw = await h.call("POST", "/v1/messages", {
      token: limited,
      body: rawMessage({ mail_from: "a@other.test" }),
    });
    assert.equal(raw.status, 403);
    assert.equal(raw.json.title, "sender domain not allowed");
    const structured = await h.call("POST", "/v1/messages", {
      token: limited,
      body: { from: "Me <me@sub.sender.test>", to: ["r@dest.test"], text: "t" },
    });
    assert.equal(structured.status, 403, "a subdomain is another domain");
    const nullSender = await h.call("POST", "/v1/messages", { token: limited, body: rawMessage({ mail_from: "" }) });
    assert.equal(nullSender.status, 403, "the null sender has no domain");
    assert.equal(await h.enqueuedMessages(), before);
    assert.equal(
      (await h.call("POST", "/v1/messages", { body: rawMessage({ mail_from: "a@other.test" }) })).status,
      202,
      "admin: any domain",
    );
  });

  it("a From holding a second mailbox cannot slip another domain past the check", async () => {
    const sneaky = await h.call("POST", "/v1/messages", {
      token: limited,
      body: { from: "Boss <boss@other.test>, Me <me@sender.test>", to: ["r@dest.test"], text: "t" },
    });
    assert.equal(sneaky.status, 422);
    assert.equal(sneaky.json.errors[0].field, "from");
  });

  it("messages from other domains are not found for a domain-limited key", async () => {
    const other = await h.call("POST", "/v1/messages", { body: rawMessage({ mail_from: "x@other.test" }) });
    assert.equal((await h.call("GET", `/v1/messages/${other.json.id}`, { token: limited })).status, 404);
    assert.equal((await h.call("DELETE", `/v1/messages/${other.json.id}`, { token: limited })).status, 404);
    assert.equal((await h.call("GET", `/v1/messages/${other.json.id}`)).status, 200);
  });
});

describe("HTTP Idempotency-Key", () => {
  let h: Harness;
  before(async () => {
    h = await fresh();
  });
  const send = (key: string, body: unknown, token?: string) =>
    h.call("POST", "/v1/messages", { body, token, headers: { "idempotency-key": key } });

  it("the same key and body replays the first answer and enqueues once", async () => {
    const before = await h.enqueuedMessages();
    const body = rawMessage({ rcpt_to: ["once@dest.test"] });
    const first = await send("order-1", body);
    assert.equal(first.status, 202);
    assert.equal(first.headers.get("idempotency-replayed"), null);
    const second = await send("order-1", body);
    assert.equal(second.status, 202);
    assert.equal(second.headers.get("idempotency-replayed"), "true");
    assert.deepEqual(second.json, first.json);
    assert.equal(await h.enqueuedMessages(), before + 1);
    const received = (await h.store.events.listEvents(0, 1000)).filter((e) =>
      e.type === "received" && e.recipient === "once@dest.test"
    );
    assert.equal(received.length, 1);
  });

  it("the same key with a different body is 409 and enqueues nothing", async () => {
    assert.equal((await send("order-2", rawMessage())).status, 202);
    const before = await h.enqueuedMessages();
    const conflict = await send("order-2", rawMessage({ raw: "Subject: other\n\nx\n" }));
    assert.equal(conflict.status, 409);
    assert.equal(conflict.headers.get("content-type"), "application/problem+json");
    assert.equal(await h.enqueuedMessages(), before);
  });

  it("a malformed key is 400", async () => {
    for (const key of ["", "x".repeat(256), "caf\u00e9"]) {
      const response = await send(key, rawMessage());
      assert.equal(response.status, 400, JSON.stringify(key));
      assert.equal(response.json.errors[0].field, "Idempotency-Key");
    }
    assert.equal((await send("x".repeat(255), rawMessage())).status, 202, "255 is fine");
    assert.equal((await send("a key with spaces ~!", rawMessage())).status, 202);
  });

  it("concurrent duplicates enqueue once", async () => {
    const before = await h.enqueuedMessages();
    const body = rawMessage({ rcpt_to: ["concurrent@dest.test"] });
    const answers = await Promise.all(Array.from({ length: 8 }, () => send("burst", body)));
    assert.deepEqual(answers.map((a) => a.status), Array(8).fill(202));
    assert.equal(new Set(answers.map((a) => a.json.id)).size, 1, "one id");
    assert.equal(answers.filter((a) => a.headers.get("idempotency-replayed") === "true").length, 7);
    assert.equal(await h.enqueuedMessages(), before + 1);
  });

  it("keys are per principal", async () => {
    const key = await h.key("k-other", ["send"]);
    const a = await send("shared", rawMessage());
    const b = await send("shared", rawMessage(), key);
    assert.equal(b.status, 202);
    assert.notEqual(a.json.id, b.json.id);
  });

  it("a refused request is not kept: fix it and retry with the same key", async () => {
    const bad = await send("fix-me", rawMessage({ rcpt_to: ["bad@@x"] }));
    assert.equal(bad.status, 422);
    const good = await send("fix-me", rawMessage());
    assert.equal(good.status, 202);
    assert.equal(good.headers.get("idempotency-replayed"), null);
  });

  it("after 24 hours the key is new again", async () => {
    const body = rawMessage();
    const first = await send("daily", body);
    await h.clock.advance(24 * 3_600_000 + 1);
    const later = await send("daily", body);
    assert.equal(later.status, 202);
    assert.notEqual(later.json.id, first.json.id);
    assert.equal(later.headers.get("idempotency-replayed"), null);
  });

  it("works against any store with findResponse/storeResponse (in-memory fake)", async () => {
    const kept = new Map<string, { requestHash: string; status: number; response: string }>();
    const fake: IdempotencyStore = {
      async findResponse(owner, key) {
        return kept.get(`${owner}/${key}`);
      },
      async storeResponse(owner, key, value) {
        kept.set(`${owner}/${key}`, value);
      },
    };
    let submitted = 0;
    const f = await fresh({
      idempotency: fake,
      ingress: { submit: async () => ({ id: `ID${++submitted}`, suppressed: new Map() }) },
    });
    const call = () => f.call("POST", "/v1/messages", { body: rawMessage(), headers: { "idempotency-key": "k" } });
    const [a, b] = await Promise.all([call(), call()]);
    assert.equal(a.json.id, "ID1");
    assert.equal(b.json.id, "ID1");
    assert.equal(submitted, 1);
    assert.deepEqual([...kept.keys()], ["admin/k"]);
  });

  it("the lock map runs work per key in order and forgets idle keys", async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const slow = (label: string, ms: number) => async () => {
      order.push(`${label}+`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`${label}-`);
    };
    await Promise.all([lock.run("a", slow("a1", 20)), lock.run("a", slow("a2", 1)), lock.run("b", slow("b1", 1))]);
    assert.deepEqual(order.filter((x) => x.startsWith("a")), ["a1+", "a1-", "a2+", "a2-"]);
    assert.ok(order.indexOf("b1-") < order.indexOf("a1-"), "another key does not wait");
    assert.equal(lock.size, 0);
    await assert.rejects(lock.run("c", async () => Promise.reject(new Error("boom"))));
    assert.equal(lock.size, 0);
  });
});

describe("HTTP validation of POST /v1/messages", () => {
  let h: Harness;
  before(async () => {
    h = await fresh();
  });
  const post = (body: unknown) => h.call("POST", "/v1/messages", { body });
  const structured = (over: Record<string, unknown> = {}) => ({
    from: "a@sender.test",
    to: ["r@dest.test"],
    text: "x",
    ...over,
  });

  it("structural and envelope headers cannot be set through headers{} (422, pointing to the field)", async () => {
    for (
      const [name, field] of [
        ["Bcc", "bcc"],
        ["bcc", "bcc"],
        ["From", "from"],
        ["To", "to"],
        ["CC", "cc"],
        ["Subject", "subject"],
        ["Reply-To", "reply_to"],
        ["Content-Type", "text, html and attachments"],
        ["content-transfer-encoding", "text, html and attachments"],
        ["MIME-Version", "text, html and attachments"],
      ]
    ) {
      const response = await post(structured({ headers: { [name!]: "evil@x.test" } }));
      assert.equal(response.status, 422, name);
      assert.equal(response.json.errors[0].field, `headers.${name}`);
      assert.match(response.json.errors[0].message, new RegExp(`use ${field}`));
    }
    const ok = await post(
      structured({ headers: { "X-Campaign": "spring", "List-Unsubscribe": "<mailto:u@sender.test>" } }),
    );
    assert.equal(ok.status, 202);
  });

  it("CR, LF or NUL in any header-bound field is refused, each one listed", async () => {
    const response = await post(
      structured({
        from: "Evil\r\nBcc: x@y.test <a@sender.test>",
        to: ["Name\n <r@dest.test>"],
        reply_to: "r\0 <r@dest.test>",
        subject: "hi\r\nBcc: x@y.test",
        headers: { "X-A": "v\r\nBcc: x@y.test", "X\r\nBcc": "v", "Bad:Name": "v" },
        attachments: [{ filename: "a\r\n.txt", content_type: "text/plain\r\nX: y", content: "eA==" }],
      }),
    );
    assert.equal(response.status, 422);
    const fields = response.json.errors.map((e: any) => e.field).sort();
    assert.deepEqual(fields, [
      "attachments.0.content_type",
      "attachments.0.content_type",
      "attachments.0.filename",
      "from",
      "headers.Bad:Name",
      "headers.X\r\nBcc",
      "headers.X-A",
      "reply_to",
      "subject",
      "to.0",
    ]);
  });

  it("every invalid field is listed, unknown fields included", async () => {
    const response = await post(
      structured({
        from: "nope",
        priority: "urgent",
        send_at: "tomorrow",
        tags: ["x".repeat(65)],
        bc: ["typo@dest.test"],
        attachments: [{ filename: "a", content: "%%%" }],
      }),
    );
    assert.equal(response.status, 422);
    assert.equal(response.headers.get("content-type"), "application/problem+json");
    const fields = response.json.errors.map((e: any) => e.field).sort();
    assert.deepEqual(fields, ["attachments.0.content", "bc", "from", "priority", "send_at", "tags.0"]);
    assert.match(response.json.errors.find((e: any) => e.field === "bc").message, /unknown field/);
    assert.match(response.json.errors.find((e: any) => e.field === "priority").message, /transactional/);
  });

  it("envelope addresses at a literal of this node or its networks are 422, each field named", async () => {
    const own = await fresh({
      literals: { routes: parseRoutes("[10.9.9.9]=127.0.0.1:2526")!, ownAddresses: () => ["203.0.113.5"] },
    });
    const before = await own.enqueuedMessages();
    const raw = await own.call("POST", "/v1/messages", {
      body: rawMessage({
        mail_from: "bounce@[192.168.1.1]",
        rcpt_to: [
          "ok@dest.test",
          "a@[127.0.0.1]",
          "b@[IPv6:::ffff:10.0.0.1]",
          "c@[203.0.113.5]",
          "d@[224.0.0.1]",
          "e@[198.51.100.7]",
          "f@[10.9.9.9]",
        ],
      }),
    });
    assert.equal(raw.status, 422);
    assert.deepEqual(
      raw.json.errors.map((e: any) => e.field),
      ["mail_from", "rcpt_to.1", "rcpt_to.2", "rcpt_to.3", "rcpt_to.4"],
      "a public literal and one RELAY_ROUTES names are allowed",
    );
    assert.match(
      raw.json.errors[1].message,
      /^\[127\.0\.0\.1\] is a loopback address \(127\.0\.0\.0\/8\): .*RELAY_ROUTES/,
    );
    assert.match(raw.json.errors[3].message, /an address of this node/);
    assert.match(raw.json.errors[4].message, /multicast/);
    const structured = await own.call("POST", "/v1/messages", {
      body: {
        from: "A <a@sender.test>",
        to: ["x@dest.test"],
        cc: ["Local <l@[IPv6:::1]>"],
        bcc: ["y@dest.test", "z@[169.254.0.1]"],
        text: "x",
      },
    });
    assert.equal(structured.status, 422);
    assert.deepEqual(structured.json.errors.map((e: any) => e.field), ["cc.0", "bcc.1"]);
    assert.equal(await own.enqueuedMessages(), before, "nothing was enqueued");
    const allowed = await own.call("POST", "/v1/messages", {
      body: rawMessage({ rcpt_to: ["e@[198.51.100.7]", "f@[010.9.9.9]"] }),
    });
    assert.equal(allowed.status, 202);
  });

  it("send_at: at most 30 days ahead; the past means now", async () => {
    const far = await post(rawMessage({ send_at: new Date(h.clock.now() + 31 * 86_400_000).toISOString() }));
    assert.equal(far.status, 422);
    assert.deepEqual(far.json.errors, [{ field: "send_at", message: "at most 30 days ahead" }]);
    const near = await post(rawMessage({ send_at: new Date(h.clock.now() + 29 * 86_400_000).toISOString() }));
    assert.equal(near.status, 202);
    const past = await post(rawMessage({ send_at: "2001-01-01T00:00:00Z", priority: "bulk" }));
    assert.equal(past.status, 202);
    const view = await h.call("GET", `/v1/messages/${past.json.id}`);
    assert.equal(view.json.recipients[0].next_attempt_at, new Date(h.clock.now()).toISOString());
  });

  it("an envelope field makes it a raw message; a body that is not JSON is 400; not an object is 422", async () => {
    const partial = await post({ mail_from: "a@sender.test", rcpt_to: ["r@dest.test"] });
    assert.equal(partial.status, 422);
    assert.deepEqual(partial.json.errors.map((e: any) => e.field), ["raw"]);
    const notJson = await h.call("POST", "/v1/messages", { rawBody: "{nope" });
    assert.equal(notJson.status, 400);
    const array = await post([1, 2]);
    assert.equal(array.status, 422);
    const tooMany = await post(
      rawMessage({ rcpt_to: ["a@d.test", "b@d.test", "c@d.test", "d@d.test", "e@d.test", "f@d.test"] }),
    );
    assert.equal(tooMany.status, 422);
    assert.equal(tooMany.json.errors[0].field, "rcpt_to");
  });

  it("display names are encoded by the composer, never parsed as a list", async () => {
    const submitted: Submission[] = [];
    const f = await fresh({
      ingress: { submit: async (s) => (submitted.push(s), { id: "ID", suppressed: new Map() }) },
    });
    const sent = await f.call("POST", "/v1/messages", {
      body: structured({
        from: '"Doe, John" <john@sender.test>',
        to: ["Zoë Ünïcode <r@dest.test>"],
        bcc: ["Hidden <h@dest.test>"],
        headers: { "X-Campaign": "spring" },
      }),
    });
    assert.equal(sent.status, 202);
    assert.deepEqual(sent.json.recipients, [
      { email: "r@dest.test", status: "queued" },
      { email: "h@dest.test", status: "queued" },
    ]);
    const [submission] = submitted;
    assert.equal(submission!.mailFrom, "john@sender.test");
    assert.equal(submission!.authUser, "admin", "who sent it is recorded");
    const text = new TextDecoder().decode(submission!.body);
    assert.match(text, /^From: "Doe, John" <john@sender\.test>\r$/m);
    assert.match(text, /^To: =\?UTF-8\?.*<r@dest\.test>\r$/m);
    assert.match(text, /^X-Campaign: spring\r$/m);
    assert.doesNotMatch(text, /^Bcc:/im);
  });

  it("GET /v1/events: a bad query is 400 naming each parameter", async () => {
    const bad = await h.call("GET", "/v1/events?after=-1&limit=5000");
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json.errors.map((e: any) => e.field).sort(), ["after", "limit"]);
    const negative = await h.call("GET", "/v1/events?limit=-1");
    assert.deepEqual(negative.json.errors, [{ field: "limit", message: "expected an integer 1-1000" }], "listed once");
    const ok = await h.call("GET", "/v1/events?limit=1");
    assert.equal(ok.status, 200);
    assert.equal(ok.json.events.length, 1);
    assert.equal(ok.json.next, ok.json.events[0].cursor);
  });
});

describe("GET /v1/events: filters and domain-limited keys", () => {
  it("filters by type, message, recipient and tag, and pages with them; a bad type is 400", async () => {
    const h = await fresh();
    const sent = async (mailFrom: string, to: string[], tags?: string[]) =>
      (await h.call("POST", "/v1/messages", {
        body: rawMessage({ mail_from: mailFrom, rcpt_to: to, ...(tags ? { tags } : {}) }),
      }))
        .json.id as string;
    const a = await sent("a@sender.test", ["x@dest.test", "y@dest.test"], ["welcome"]);
    const b = await sent("b@other.test", ["x@dest.test"]);
    const ids = async (query: string) =>
      (await h.call("GET", `/v1/events?${query}`)).json.events.map((e: any) => `${e.message_id}:${e.recipient}`);
    assert.deepEqual(await ids(`message=${b}`), [`${b}:x@dest.test`]);
    assert.deepEqual(await ids("recipient=x@dest.test"), [`${a}:x@dest.test`, `${b}:x@dest.test`]);
    assert.deepEqual(await ids("tag=welcome"), [`${a}:x@dest.test`, `${a}:y@dest.test`]);
    assert.deepEqual(await ids("type=delivered,bounced"), []);
    assert.equal((await ids("type=received")).length, 3);
    const page = await h.call("GET", "/v1/events?recipient=x@dest.test&limit=1");
    assert.deepEqual(await ids(`recipient=x@dest.test&after=${page.json.next}`), [`${b}:x@dest.test`]);
    const bad = await h.call("GET", "/v1/events?type=received,nonsense");
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json.errors.map((e: any) => e.field), ["type.1"], "the second type is the bad one");
  });

  it("a key limited to sender domains reads only the events of its domains' messages", async () => {
    const h = await fresh();
    const limited = await h.key("k-events", ["send", "read"], ["sender.test"]);
    const own = await h.call("POST", "/v1/messages", {
      token: limited,
      body: rawMessage({ mail_from: "a@sender.test" }),
    });
    await h.call("POST", "/v1/messages", { body: rawMessage({ mail_from: "b@other.test" }) });
    await h.database.client.execute({
      sql:
        "INSERT INTO events (at, type, message_id, recipient, data) VALUES (?, 'destination_throttled', NULL, NULL, '{}')",
      args: [h.clock.now()],
    });
    const seen = (await h.call("GET", "/v1/events", { token: limited })).json.events;
    assert.deepEqual(seen.map((e: any) => e.message_id), [own.json.id]);
    const all = (await h.call("GET", "/v1/events")).json.events;
    assert.equal(all.length, 3, "the admin token reads everyone's, destination events too");
  });
});

describe("GET /v1/events: a destination's events", () => {
  it("a destination's throttle, suspension and resumption are listed in order, with no message or recipient", async () => {
    const h = await fresh();
    await h.call("POST", "/v1/messages", { body: rawMessage() });
    const at = Date.UTC(2026, 4, 18, 12);
    const cause = { reason: "automation", rule: "google-unsolicited-rate", reply: "421 4.7.28 slow down" } as const;
    const destination = "gmail-smtp-in.l.google.com|provider:google";
    const store = new DestinationEventStore(h.database);
    for (
      const change of [
        {
          type: "destination_throttled",
          at,
          limits: { messageRate: { count: 10, per: "min" } },
          until: at + 1_800_000,
          ends: at + 2_700_000,
          cause,
        },
        { type: "destination_suspended", at: at + 60_000, until: Infinity, cause: { reason: "operator" } },
        { type: "destination_resumed", at: at + 120_000, cause: { reason: "operator" } },
      ] as const
    ) await store.append(destinationEvent(change, destination, "google"));

    const page = await h.call("GET", "/v1/events");
    assert.equal(page.status, 200);
    v.parse(eventPageSchema, page.json);
    const [received, throttled, suspended, resumed] = page.json.events;
    assert.equal(received.type, "received");
    assert.deepEqual(throttled, {
      id: received.id + 1,
      cursor: String(received.id + 1),
      at: "2026-05-18T12:00:00.000Z",
      type: "destination_throttled",
      message_id: null,
      recipient: null,
      destination,
      provider: "google",
      reason: "automation",
      rule: "google-unsolicited-rate",
      reply: "421 4.7.28 slow down",
      limits: { message_rate: "10/min" },
      until: "2026-05-18T12:30:00.000Z",
      ends: "2026-05-18T12:45:00.000Z",
    });
    assert.deepEqual(
      [suspended.type, suspended.at, suspended.reason, suspended.rule, suspended.until, suspended.message_id],
      ["destination_suspended", "2026-05-18T12:01:00.000Z", "operator", null, null, null],
    );
    assert.deepEqual([resumed.type, resumed.reason, page.json.next], [
      "destination_resumed",
      "operator",
      resumed.cursor,
    ]);
  });
});

describe("HTTP priority lanes", () => {
  const HEADER = "X-Relay-Priority";
  let h: Harness;
  let bulkKey: string;
  before(async () => {
    h = await fresh({ priorityHeader: HEADER });
    bulkKey = await h.key("bulkkey", ["send", "read"], [], "bulk");
  });
  const send = async (body: unknown, token?: string) => {
    const sent = await h.call("POST", "/v1/messages", { body, token });
    assert.equal(sent.status, 202, sent.text);
    return sent.json.id as string;
  };
  /** Each recipient's lane, as GET /v1/messages/:id shows it, and the `received` event's. */
  const laneOf = async (id: string) => {
    const view = await h.call("GET", `/v1/messages/${id}`);
    const lanes = new Set(view.json.recipients.map((r: any) => r.priority));
    assert.equal(lanes.size, 1, JSON.stringify(view.json.recipients));
    const [lane] = lanes;
    assert.equal(view.json.events.find((e: any) => e.type === "received").priority, lane);
    return lane;
  };
  const raw = (headers: string, over: Record<string, unknown> = {}) =>
    rawMessage({ rcpt_to: ["r1@dest.test", "r2@dest.test"], raw: `${headers}Subject: hi\n\nbody\n`, ...over });
  const structured = (over: Record<string, unknown> = {}) => ({
    from: "a@sender.test",
    to: ["r@dest.test"],
    text: "x",
    ...over,
  });

  it("the priority field is the lane; it is no longer copied into metadata", async () => {
    const id = await send(raw("", { priority: "bulk", metadata: { user: 1 } }));
    assert.equal(await laneOf(id), "bulk");
    assert.deepEqual((await h.call("GET", `/v1/messages/${id}`)).json.metadata, { user: 1 });
    assert.equal(await laneOf(await send(raw("", { priority: "transactional" }), bulkKey)), "transactional");
  });

  it("nothing named: the API key's own priority, and transactional for the admin token", async () => {
    assert.equal(await laneOf(await send(raw(""), bulkKey)), "bulk");
    assert.equal(await laneOf(await send(raw(""))), "transactional");
  });

  it("the operator's header names the lane, in any case, in raw text or headers{}; it wins over the key's priority", async () => {
    assert.equal(await laneOf(await send(raw(`${HEADER.toLowerCase()}: Bulk\n`))), "bulk");
    assert.equal(await laneOf(await send(structured({ headers: { [HEADER]: "bulk" } }))), "bulk");
    assert.equal(await laneOf(await send(raw(`${HEADER}: transactional\n`), bulkKey)), "transactional");
    assert.equal(
      await laneOf(await send(raw(`${HEADER}: transactional\n`, { priority: "bulk" }))),
      "bulk",
      "the field wins over the header",
    );
  });

  it("a header value that is neither lane is 422 naming where it is, unless the priority field decides", async () => {
    const before = await h.enqueuedMessages();
    const inRaw = await h.call("POST", "/v1/messages", { body: raw(`${HEADER}: urgent\n`) });
    assert.equal(inRaw.status, 422);
    assert.deepEqual(inRaw.json.errors.map((e: any) => e.field), ["raw"]);
    assert.match(inRaw.json.errors[0].message, /X-Relay-Priority .*expected transactional or bulk, got "urgent"/);
    const inHeaders = await h.call("POST", "/v1/messages", {
      body: structured({ headers: { "x-relay-priority": "1" } }),
    });
    assert.equal(inHeaders.status, 422);
    assert.deepEqual(inHeaders.json.errors.map((e: any) => e.field), ["headers.x-relay-priority"]);
    assert.equal(await h.enqueuedMessages(), before, "nothing was enqueued");
    assert.equal(await laneOf(await send(raw(`${HEADER}: urgent\n`, { priority: "bulk" }))), "bulk");
  });

  it("without RELAY_PRIORITY_HEADER no header is read", async () => {
    const plain = await fresh();
    const sent = await plain.call("POST", "/v1/messages", { body: raw(`${HEADER}: bulk\n`) });
    assert.equal(sent.status, 202);
    const view = await plain.call("GET", `/v1/messages/${sent.json.id}`);
    assert.deepEqual(view.json.recipients.map((r: any) => r.priority), ["transactional", "transactional"]);
  });
});

describe("HTTP unexpected errors", () => {
  /** The log lines of a harness, parsed: the relay logs JSON, one object a line. */
  const logged = (h: Harness) => h.logs.map((line) => JSON.parse(line) as Record<string, unknown>);

  it("a failing route is a 500 problem and one JSON log line, both naming the request's id", async () => {
    const broken = await fresh({
      store: {
        messageView: async () => Promise.reject(new Error("database file is gone")),
        control: {} as QueueStore["control"],
        events: { listEvents: async () => [] },
      },
    });
    const answer = await broken.call("GET", "/v1/messages/01ABC");
    assert.equal(answer.status, 500);
    assert.equal(answer.headers.get("content-type"), "application/problem+json");
    const request = answer.headers.get("x-request-id");
    assert.match(request ?? "", /^[0-9A-Z]{26}$/, "a request id (a ULID) comes back");
    assert.ok(!answer.text.includes("database file is gone"), "the cause is not shown to the client");
    assert.ok(answer.json.detail.includes(request!), answer.json.detail);
    const lines = logged(broken);
    assert.equal(lines.length, 1, broken.logs.join("\n"));
    assert.equal(lines[0]!.level, "error");
    assert.equal(lines[0]!.message, "HTTP request failed");
    assert.equal(lines[0]!.request, request);
    assert.equal(lines[0]!.method, "GET");
    assert.equal(lines[0]!.path, "/v1/messages/01ABC");
    assert.match(String(lines[0]!.error), /database file is gone/);
  });

  it("an answer that cannot be kept for its Idempotency-Key is still 202, and logged as JSON with the request's id", async () => {
    const forgetful = await fresh({
      idempotency: {
        findResponse: async () => undefined,
        storeResponse: async () => Promise.reject(new Error("disk full")),
      },
    });
    const answer = await forgetful.call("POST", "/v1/messages", {
      body: rawMessage(),
      headers: { "idempotency-key": "k1" },
    });
    assert.equal(answer.status, 202, answer.text);
    const lines = logged(forgetful);
    assert.equal(lines.length, 1, forgetful.logs.join("\n"));
    assert.equal(lines[0]!.level, "error");
    assert.equal(lines[0]!.request, answer.headers.get("x-request-id"));
    assert.match(String(lines[0]!.error), /disk full/);
  });

  it("answers that went well log nothing", async () => {
    const h = await fresh();
    assert.equal((await h.call("POST", "/v1/messages", { body: rawMessage() })).status, 202);
    assert.equal((await h.call("GET", "/v1/messages/NOSUCH")).status, 404);
    assert.deepEqual(h.logs, []);
  });
});

describe("GET /v1/warmup", () => {
  it("each source IP and provider: step of N, caps, counts, rates, and what the window's end would do", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 5, 9));
    const ledger = new WarmupLedger({ ...shippedShaping().rules.warmup!, enabled: true });
    const h = await fresh({ warmup: { enabled: true, report: () => ledger.report(clock.now()) } });
    for (let i = 0; i < 5; i++) ledger.sent("192.0.2.7", "google", "bulk", clock.now());
    ledger.outcome("192.0.2.7", "google", "deferred", clock.now());
    ledger.outcome("192.0.2.7", "google", "delivered", clock.now());
    const reader = await h.key("reader", ["read"]);
    assert.equal((await h.call("GET", "/v1/warmup", { token: reader })).status, 403, "admin only");

    const answer = await h.call("GET", "/v1/warmup");
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.json, {
      enabled: true,
      entries: [{
        source_ip: "192.0.2.7",
        provider: "google",
        warm: false,
        step: 1,
        steps: 30,
        step_since: "2026-01-05T09:00:00.000Z",
        caps: { daily: 50, hourly: 7 },
        bulk_caps: { daily: 40, hourly: 5 },
        sent: {
          hour: 5,
          day: 5,
          hour_started_at: "2026-01-05T09:00:00.000Z",
          day_started_at: "2026-01-05T09:00:00.000Z",
        },
        window: {
          started_at: "2026-01-05T09:00:00.000Z",
          ends_at: "2026-01-06T09:00:00.000Z",
          sent: 5,
          delivered: 1,
          deferred: 1,
          blocked: 0,
          complained: 0,
        },
        rates: { deferral_rate: 0.2, block_rate: 0, complaint_rate: 0 },
        next_evaluation: {
          at: "2026-01-06T09:00:00.000Z",
          action: "hold",
          reason: "deferral rate 20% is not below promote_below's 5%",
        },
      }],
    });
    const described = (await h.call("GET", "/openapi.json")).json;
    assert.ok(described.paths["/v1/warmup"]?.get, "in the OpenAPI document");
  });

  it("with warmup off in the rules: enabled false and no entries", async () => {
    const h = await fresh({ warmup: { enabled: false, report: () => assert.fail("not asked") } });
    const answer = await h.call("GET", "/v1/warmup");
    assert.deepEqual(answer.json, { enabled: false, entries: [] });
  });
});
