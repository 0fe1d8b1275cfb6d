// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * Webhooks (SPEC.md, Events): the event log POSTed to registered endpoints,
 * signed per Standard Webhooks, retried until taken, isolated from the mail
 * flow and from each other, never to the node's own networks unless allowed.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { Webhook } from "standardwebhooks";
import { startWebhookReceiver, type WebhookReceiver, type WebhookRequestSeen } from "../helpers/webhook-receiver.ts";
import { type RelayProcess, startRelay } from "../helpers/relay-process.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { defaultZone, relayApi, startWorld, type World } from "../helpers/world.ts";

const HEAVY = { timeout: 60_000 };

/** The events a delivery carries, after checking its signature as a receiver would. */
function verifiedEvents(request: WebhookRequestSeen, secret: string): any[] {
  const payload = new Webhook(secret).verify(request.body, request.headers) as any;
  assert.equal(payload.type, "relay.events");
  return payload.data.events;
}

async function send(world: World, count: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const sent = await world.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: [`${tag}-${i}@dest.test`],
      raw: `From: a@sender.test\nTo: ${tag}-${i}@dest.test\nSubject: ${tag} ${i}\n\nhello\n`,
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    ids.push(sent.json.id);
  }
  return ids;
}

describe("webhooks: a receiver that fails, times out, then recovers", () => {
  let world: World;
  let receiver: WebhookReceiver;
  before(async () => {
    receiver = await startWebhookReceiver("fail");
    world = await startWorld({
      env: { RELAY_WEBHOOK_ALLOW_PRIVATE: "true", RELAY_WEBHOOK_TIMEOUT: "1s", RELAY_WEBHOOK_BACKOFF: "1s" },
    });
  });
  after(async () => {
    await world?.close();
    await receiver?.close();
  });

  it("gets every event after recovery, once by id, in log order, each delivery signed", HEAVY, async () => {
    const registered = await world.api("POST", "/v1/webhooks", {
      url: receiver.url,
      events: ["*"],
      description: "all of it",
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.json));
    const { id, secret, cursor } = registered.json;
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(registered.json.url, receiver.url);

    const messageIds = await send(world, 5, "hook");
    await waitUntil(() => receiver.requests.length, (n) => n >= 1, { what: "a first delivery, answered 500" });
    receiver.mode = "hang";
    await waitUntil(
      () => world.api("GET", `/v1/webhooks/${id}`),
      (r) => /no answer within 1000 ms/.test(r.json.last_error ?? ""),
      {
        what: "a delivery timed out",
      },
    );
    receiver.mode = "ok";
    for (const m of messageIds) await world.waitForEvent((e) => e.type === "delivered" && e.message_id === m);
    const log = (await world.events()).filter((e) => e.id > Number(cursor));
    const taken = () => receiver.acknowledged().flatMap((r) => verifiedEvents(r, secret));
    await waitUntil(taken, (events) => events.length >= log.length, { what: "every event taken" });

    const ids = taken().map((e) => e.id);
    assert.deepEqual(ids, log.map((e) => e.id), "every event once, in log order");
    assert.deepEqual(taken(), log, "as GET /v1/events shows them");
    for (const m of messageIds) {
      assert.deepEqual(taken().filter((e) => e.message_id === m).map((e) => e.type), ["received", "delivered"]);
    }
    // Every attempt was signed, and the first batch kept its webhook-id through the failure, the timeout and the success.
    for (const r of receiver.requests) verifiedEvents(r, secret);
    const modes = ["fail", "hang", "ok"] as const;
    const firstId = receiver.requests[0]!.headers["webhook-id"];
    for (const mode of modes) {
      assert.ok(receiver.requests.some((r) => r.mode === mode && r.headers["webhook-id"] === firstId), mode);
    }
    assert.equal(receiver.requests[0]!.headers["content-type"], "application/json");

    const status = await world.api("GET", `/v1/webhooks/${id}`);
    assert.equal(status.json.backlog, 0);
    assert.equal(status.json.dead_letters, 0);
    assert.equal(status.json.attempts, 0);
    assert.equal(status.json.last_error, null);
    assert.equal(status.json.secret, undefined, "the secret is shown once");
    assert.equal(status.json.cursor, String(log.at(-1).id));
    const listed = await world.api("GET", "/v1/webhooks");
    assert.deepEqual(listed.json.webhooks.map((w: any) => w.id), [id]);
    assert.equal(listed.json.webhooks[0].secret, undefined);
  });

  it("answers bad registrations with problem JSON naming the field, and is in /openapi.json", async () => {
    const bad = await world.api("POST", "/v1/webhooks", { url: "ftp://example.com/", events: ["delivered", "nope"] });
    assert.equal(bad.status, 422);
    assert.deepEqual(bad.json.errors.map((e: any) => e.field).sort(), ["events.1"]);
    const scheme = await world.api("POST", "/v1/webhooks", { url: "ftp://example.com/", events: ["delivered"] });
    assert.equal(scheme.status, 422);
    assert.equal(scheme.json.errors[0].field, "url");
    assert.match(scheme.json.errors[0].message, /http or https/);
    const none = await world.api("POST", "/v1/webhooks", { url: "https://example.com/", events: [] });
    assert.equal(none.status, 422);
    assert.equal((await world.api("GET", "/v1/webhooks/wh_nope")).status, 404);
    assert.equal((await world.api("DELETE", "/v1/webhooks/wh_nope")).status, 404);
    const doc = await (await fetch(world.relay.url("/openapi.json"))).json() as any;
    for (const path of ["/v1/webhooks", "/v1/webhooks/{id}", "/v1/webhooks/{id}/dead-letters"]) {
      assert.ok(doc.paths[path], path);
    }
  });
});

describe("webhooks: private addresses", () => {
  let world: World;
  let receiver: WebhookReceiver;
  before(async () => {
    receiver = await startWebhookReceiver("ok");
    world = await startWorld({
      zone: { ...defaultZone(), "hooks.public.test": { A: ["127.0.0.1"] } },
      env: { RELAY_WEBHOOK_TIMEOUT: "1s", RELAY_WEBHOOK_BACKOFF: "1s" },
    });
  });
  after(async () => {
    await world?.close();
    await receiver?.close();
  });

  it("refuses a loopback URL at registration unless RELAY_WEBHOOK_ALLOW_PRIVATE", async () => {
    const port = new URL(receiver.url).port;
    for (
      const url of [receiver.url, `http://localhost:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`, "http://10.1.2.3/"]
    ) {
      const refused = await world.api("POST", "/v1/webhooks", { url, events: ["*"] });
      assert.equal(refused.status, 422, url);
      assert.equal(refused.json.errors[0].field, "url", url);
      assert.match(refused.json.errors[0].message, /RELAY_WEBHOOK_ALLOW_PRIVATE is false/, url);
    }
    assert.deepEqual((await world.api("GET", "/v1/webhooks")).json.webhooks, []);
  });

  it("refuses at connect time a name that resolves to loopback, and sends it nothing", HEAVY, async () => {
    const url = receiver.url.replace("127.0.0.1", "hooks.public.test");
    const registered = await world.api("POST", "/v1/webhooks", { url, events: ["*"] });
    assert.equal(registered.status, 201, "a name is checked when it is resolved");
    const [message] = await send(world, 1, "rebind");
    await world.waitForEvent((e) => e.type === "delivered" && e.message_id === message);
    const status = await waitUntil(
      () => world.api("GET", `/v1/webhooks/${registered.json.id}`),
      (r) => r.json.attempts >= 2,
      { what: "two refused attempts" },
    );
    assert.match(status.json.last_error, /refused: hooks\.public\.test resolves to 127\.0\.0\.1 is a loopback address/);
    assert.ok(status.json.backlog >= 2);
    assert.equal(receiver.requests.length, 0, "nothing reached the loopback receiver");
  });
});

describe("webhooks: a dead receiver", () => {
  let world: World;
  let healthy: WebhookReceiver;
  let dead: Server;
  const held: Socket[] = [];
  before(async () => {
    healthy = await startWebhookReceiver("ok");
    // Accepts, reads, never answers.
    dead = createServer((socket) => {
      held.push(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    world = await startWorld({ env: { RELAY_WEBHOOK_ALLOW_PRIVATE: "true", RELAY_WEBHOOK_TIMEOUT: "60s" } });
  });
  after(async () => {
    await world?.close();
    await healthy?.close();
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => dead?.close(resolve));
  });

  it(
    "slows neither the mail nor another endpoint: all delivered while its first request is unanswered",
    HEAVY,
    async (t) => {
      /** Send `count` messages and wait until each is delivered (at the destination and in the log); the ms it took. */
      const deliver = async (tag: string, count: number) => {
        const started = Date.now();
        const ids = await send(world, count, tag);
        await world.destination.waitFor((m) =>
          ids.every((_, i) => m.some((r) => r.data.includes(`Subject: ${tag} ${i}\r\n`)))
        );
        for (const m of ids) await world.waitForEvent((e) => e.type === "delivered" && e.message_id === m);
        return { ids, ms: Date.now() - started };
      };
      const without = await deliver("baseline", 40);

      const deadUrl = `http://127.0.0.1:${(dead.address() as { port: number }).port}/`;
      const stuck = await world.api("POST", "/v1/webhooks", { url: deadUrl, events: ["*"] });
      assert.equal(stuck.status, 201);
      const live = await world.api("POST", "/v1/webhooks", { url: healthy.url, events: ["delivered"] });
      assert.equal(live.status, 201);
      const withDead = await deliver("flow", 40);
      const messageIds = withDead.ids;
      // For the record only: the assertions below are about what waited, not about time.
      t.diagnostic(
        `40 messages delivered in ${without.ms} ms without webhooks, ${withDead.ms} ms with a dead endpoint`,
      );

      // The other endpoint took every delivered event meanwhile.
      const taken = () => healthy.acknowledged().flatMap((r) => verifiedEvents(r, live.json.secret));
      await waitUntil(taken, (events) => events.length >= messageIds.length, { what: "the healthy endpoint's events" });
      assert.deepEqual(taken().map((e) => e.message_id).sort(), [...messageIds].sort());
      assert.ok(taken().every((e) => e.type === "delivered"));

      // All of that happened inside the dead endpoint's first attempt: nothing waited for it.
      const status = await world.api("GET", `/v1/webhooks/${stuck.json.id}`);
      assert.equal(held.length, 1, "one request in flight, the rest behind it");
      assert.equal(status.json.attempts, 0, "its first attempt has not even timed out");
      assert.equal(status.json.last_error, null);
      assert.ok(status.json.backlog >= 2 * messageIds.length, `backlog ${status.json.backlog}`);
    },
  );
});

describe("webhooks: kill -9", () => {
  let world: World;
  let receiver: WebhookReceiver;
  let restarted: RelayProcess | undefined;
  const env = { RELAY_WEBHOOK_ALLOW_PRIVATE: "true", RELAY_WEBHOOK_TIMEOUT: "1s", RELAY_WEBHOOK_BACKOFF: "1s" };
  before(async () => {
    receiver = await startWebhookReceiver("ok");
    world = await startWorld({ env });
  });
  after(async () => {
    await restarted?.cleanup();
    await world?.close();
    await receiver?.close();
  });

  it("loses no event and repeats none it took: the endpoint's cursor is on disk", HEAVY, async () => {
    const registered = await world.api("POST", "/v1/webhooks", { url: receiver.url, events: ["*"] });
    const { id, secret, cursor } = registered.json;
    const before = await send(world, 3, "before");
    for (const m of before) await world.waitForEvent((e) => e.type === "delivered" && e.message_id === m);
    const taken = () => receiver.acknowledged().flatMap((r) => verifiedEvents(r, secret));
    await waitUntil(taken, (events) => events.length >= 6, { what: "the first messages' events taken" });

    receiver.mode = "fail";
    const during = await send(world, 3, "during");
    for (const m of during) await world.waitForEvent((e) => e.type === "delivered" && e.message_id === m);
    await waitUntil(() => world.api("GET", `/v1/webhooks/${id}`), (r) => r.json.attempts >= 1, {
      what: "a failed attempt",
    });
    assert.equal(await world.relay.kill9(), 137);

    receiver.mode = "ok";
    restarted = await startRelay({
      dataDir: world.relay.dataDir,
      adminToken: world.relay.adminToken,
      env: {
        RELAY_DNS_SERVERS: `127.0.0.1:${world.dns.port}`,
        RELAY_MX_PORT: String(world.destination.port),
        RELAY_RETRY_SCHEDULE: "1s",
        RELAY_SUPPRESS_BOUNCE_CATEGORIES: "none",
        ...env,
      },
    });
    const log = (await relayApi(restarted).events()).filter((e) => e.id > Number(cursor));
    assert.equal(log.length, 12);
    await waitUntil(taken, (events) => events.length >= log.length, { what: "every event taken after the restart" });
    assert.deepEqual(taken().map((e) => e.id), log.map((e) => e.id), "each once, in log order");
  });
});
