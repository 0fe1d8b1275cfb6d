import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { WebhookDispatcher } from "../../src/events/webhook-dispatcher.ts";
import type { WebhookRequest, WebhookResult } from "../../src/events/webhook-post.ts";
import type { Database } from "../../src/queue/database.ts";
import { WebhookStore } from "../../src/queue/webhooks.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";
import { waitUntil } from "../helpers/wait-until.ts";

const temporaryDatabase = temporaryDatabases("relay-webhook-fleet-");

const T0 = 1_700_000_000_000;
const POLL = 600_000;
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OK: WebhookResult = { ok: true, status: 204 };

interface Sent {
  readonly node: string;
  readonly eventIds: number[];
}

/** What a receiver keys on: each batch's webhook-id, and each event's node and id. */
interface Keys {
  readonly webhookId: string;
  readonly events: string[];
}

/**
 * Two nodes of a fleet: each its own database (events, progress, dead
 * letters) and dispatcher, the endpoints in a third, shared one. `answer`
 * decides each delivery.
 */
async function fleet(answer: (request: WebhookRequest) => WebhookResult | Promise<WebhookResult>) {
  const clock = new FakeClock(T0);
  const { database: shared } = await temporaryDatabase(T0);
  const sent: Sent[] = [];
  const keys: Keys[] = [];
  const node = async (name: string) => {
    const { database } = await temporaryDatabase(T0);
    const store = new WebhookStore(database, clock, shared);
    const dispatcher = new WebhookDispatcher({
      store,
      clock,
      log: () => {},
      timeoutMs: 10_000,
      backoff: { firstMs: 1000, maxMs: 3_600_000, windowMs: 86_400_000 },
      pollMs: POLL,
      node: name,
      post: async (request) => {
        const body = JSON.parse(new TextDecoder().decode(request.body));
        sent.push({ node: name, eventIds: body.data.events.map((e: { id: number }) => e.id) });
        keys.push({
          webhookId: request.headers["webhook-id"]!,
          events: body.data.events.map((e: { id: number; node: string }) => `${e.node}/${e.id}`),
        });
        return await answer(request);
      },
    });
    dispatcher.start();
    const addEvents = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await database.client.execute({
          sql:
            "INSERT INTO events (at, type, message_id, recipient, data) VALUES (?, 'delivered', 'm1', 'r@x.test', '{}')",
          args: [clock.now()],
        });
      }
    };
    return { store, dispatcher, database, addEvents };
  };
  const a = await node("a");
  const b = await node("b");
  /** One poll of both nodes: the time moves to it, and everything it started ends. */
  const poll = async () => {
    await clock.advance(POLL);
    await Promise.all([a.dispatcher.settled(), b.dispatcher.settled()]);
  };
  await poll();
  return { clock, a, b, sent, keys, poll };
}

async function count(database: Database, table: string): Promise<number> {
  return Number((await database.client.execute(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);
}

describe("webhook endpoints shared by a fleet", () => {
  it("an endpoint registered through one node is sent each node's events since its registration, from its own log", async () => {
    const f = await fleet(() => OK);
    await f.b.addEvents(2); // before the registration: not the endpoint's
    await f.clock.advance(1000);
    const webhook = await f.a.store.create({
      id: "wh_1",
      url: "http://hooks.test/",
      eventTypes: ["*"],
      secret: SECRET,
    });
    // Written on B at the registration's time, before B saw the endpoint: its (B learns of it at its next look).
    await f.b.addEvents(1);
    await f.a.addEvents(2);
    await f.poll();
    assert.deepEqual(f.sent.toSorted((x, y) => x.node.localeCompare(y.node)), [
      { node: "a", eventIds: [1, 2] },
      { node: "b", eventIds: [3] },
    ]);
    await f.b.addEvents(2);
    await f.poll();
    assert.deepEqual(f.sent.slice(2), [{ node: "b", eventIds: [4, 5] }], "each node from its own cursor");
    const [onA, onB] = [await f.a.store.get(webhook.id), await f.b.store.get(webhook.id)];
    assert.deepEqual([onA?.cursor, onB?.cursor], [2, 5]);
    // The same ids name other events on the other node: the node tells them apart.
    assert.deepEqual(f.keys.map((k) => k.webhookId).toSorted(), ["evt_a_1_2", "evt_b_3_3", "evt_b_4_5"]);
    assert.deepEqual(f.keys.flatMap((k) => k.events).toSorted(), ["a/1", "a/2", "b/3", "b/4", "b/5"]);
    assert.deepEqual([onA?.url, onB?.url, onB?.secret], ["http://hooks.test/", "http://hooks.test/", SECRET]);
    await f.a.dispatcher.stop();
    await f.b.dispatcher.stop();
  });

  it("deleting an endpoint through one node stops the other's delivery in flight and drops its progress there", async () => {
    let inFlight = 0;
    const f = await fleet((request) =>
      new Promise<WebhookResult>((resolve) => {
        inFlight++;
        request.signal!.addEventListener("abort", () => resolve({ ok: false, reason: "cancelled" }));
      })
    );
    const webhook = await f.a.store.create({ id: "wh_1", url: "http://hung.test/", eventTypes: ["*"], secret: SECRET });
    await f.b.addEvents(3);
    await f.clock.advance(POLL);
    await waitUntil(() => inFlight, (n) => n === 1, { what: "B's delivery in flight" });
    const onB = (await f.b.store.get(webhook.id))!;
    await f.b.store.deadLetter(onB, 1, [{ eventId: 1, event: { id: 1 } }], "HTTP 503");
    assert.deepEqual(
      [await count(f.b.database, "webhook_progress"), await count(f.b.database, "webhook_dead_letters")],
      [
        1,
        1,
      ],
    );

    assert.equal(await f.a.store.remove(webhook.id), true);
    await f.poll(); // B's next look: the endpoint is gone, and what B was sending it is cancelled
    assert.deepEqual(f.sent, [{ node: "b", eventIds: [1, 2, 3] }]);
    assert.deepEqual(
      [await count(f.b.database, "webhook_progress"), await count(f.b.database, "webhook_dead_letters")],
      [
        0,
        0,
      ],
    );
    assert.equal(await f.b.store.get(webhook.id), undefined);
    await f.b.addEvents(2);
    await f.poll();
    assert.equal(f.sent.length, 1, "nothing more sent");
    await f.a.dispatcher.stop();
    await f.b.dispatcher.stop();
  });
});
