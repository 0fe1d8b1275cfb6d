// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../src/core/log.ts";
import { WebhookDispatcher } from "../../src/events/webhook-dispatcher.ts";
import { Webhooks } from "../../src/events/webhooks.ts";
import { hashToken } from "../../src/http/auth.ts";
import { CredentialStore } from "../../src/queue/credentials.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { WebhookStore } from "../../src/queue/webhooks.ts";
import { temporaryDatabases } from "../helpers/database.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { httpAppOver } from "../helpers/http-app.ts";

const temporaryDatabase = temporaryDatabases("relay-http-webhooks-");

const ADMIN = "admin-token-for-webhook-tests";
/** The HTTP API over a real database, its webhook dispatcher built but never run (the fake clock stays put). */
async function harness() {
  const clock = new FakeClock(Date.now());
  const { database } = await temporaryDatabase(clock.now());
  const store = new QueueStore(database, undefined, clock, "node-test");
  const credentials = new CredentialStore(database, clock);
  const log = createLogger("error", "json", () => {});
  const webhookStore = new WebhookStore(database, clock);
  const dispatcher = new WebhookDispatcher({
    store: webhookStore,
    post: () => Promise.reject(new Error("the dispatcher does not run here")),
    clock,
    log,
    timeoutMs: 1000,
    backoff: { firstMs: 1000, maxMs: 60_000, windowMs: 86_400_000 },
  });
  const app = httpAppOver({ store, credentials, clock, adminToken: ADMIN }, {
    log,
    webhooks: new Webhooks(webhookStore, dispatcher, false),
  });
  const call = async (method: string, path: string, body?: unknown, token = ADMIN) => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      type: response.headers.get("content-type"),
      json: text ? JSON.parse(text) : undefined,
    };
  };
  return { call, database, store, webhookStore, credentials };
}

describe("/v1/webhooks", () => {
  it("needs the admin scope", async () => {
    const h = await harness();
    const secret = "read-key-secret";
    await h.credentials.addApiKey(
      { id: "k1", name: "k1", scopes: ["read", "send"], domains: [], lane: "transactional", scan: null },
      hashToken(secret),
    );
    for (const [method, path] of [["GET", "/v1/webhooks"], ["POST", "/v1/webhooks"], ["DELETE", "/v1/webhooks/x"]]) {
      assert.equal((await h.call(method!, path!, undefined, secret)).status, 403, `${method} ${path}`);
    }
  });

  it("lists an endpoint's dead letters by page and replays all or some of them", async () => {
    const h = await harness();
    const created = await h.call("POST", "/v1/webhooks", { url: "https://hooks.example.com/in", events: ["*"] });
    assert.equal(created.status, 201);
    const id = created.json.id;
    assert.match(id, /^wh_/);
    for (let i = 0; i < 3; i++) {
      await h.database.client.execute({
        sql: "INSERT INTO events (at, type, message_id, recipient, data) VALUES (?, 'bounced', 'm1', ?, '{}')",
        args: [Date.now(), `r${i}@x.test`],
      });
    }
    const row = (await h.webhookStore.get(id))!;
    const events = await h.webhookStore.eventsFor(row, 3, 100);
    await h.webhookStore.deadLetter(
      row,
      3,
      events.map((e) => ({ eventId: e.id, event: { id: e.id, type: e.type, recipient: e.recipient } })),
      "HTTP 503",
    );

    const status = await h.call("GET", `/v1/webhooks/${id}`);
    assert.deepEqual([status.json.dead_letters, status.json.backlog, status.json.cursor], [3, 0, "3"]);
    assert.equal(status.json.last_error, "HTTP 503");
    const page = await h.call("GET", `/v1/webhooks/${id}/dead-letters?limit=2`);
    assert.deepEqual(page.json.dead_letters.map((d: any) => [d.event_id, d.event.recipient, d.last_error]), [
      [1, "r0@x.test", "HTTP 503"],
      [2, "r1@x.test", "HTTP 503"],
    ]);
    const rest = await h.call("GET", `/v1/webhooks/${id}/dead-letters?after=2`);
    assert.deepEqual(rest.json.dead_letters.map((d: any) => d.event_id), [3]);
    assert.equal((await h.call("GET", `/v1/webhooks/${id}/dead-letters?limit=0`)).status, 400);

    const some = await h.call("POST", `/v1/webhooks/${id}/dead-letters/replay`, { event_ids: [2] });
    assert.deepEqual([some.status, some.json], [202, { replaying: 1 }]);
    const again = await h.call("GET", `/v1/webhooks/${id}`);
    assert.deepEqual([again.json.dead_letters, again.json.backlog], [2, 1]);
    const all = await h.call("POST", `/v1/webhooks/${id}/dead-letters/replay`);
    assert.deepEqual(all.json, { replaying: 2 });
    const bad = await h.call("POST", `/v1/webhooks/${id}/dead-letters/replay`, { event_ids: ["x"] });
    assert.equal(bad.status, 422);
    assert.equal(bad.type, "application/problem+json");

    assert.equal((await h.call("DELETE", `/v1/webhooks/${id}`)).status, 200);
    assert.equal((await h.call("GET", `/v1/webhooks/${id}/dead-letters`)).status, 404);
    const left = await h.database.client.execute("SELECT count(*) AS n FROM webhook_dead_letters");
    assert.equal(Number(left.rows[0]!.n), 0, "its dead letters went with it");
  });
});
