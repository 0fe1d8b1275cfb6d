import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Logger } from "../../src/core/log.ts";
import { EventFeed } from "../../src/events/feed.ts";
import { WebhookDispatcher } from "../../src/events/webhook-dispatcher.ts";
import { retriesOver, retryDelay, type WebhookBackoff } from "../../src/events/webhook-backoff.ts";
import type { WebhookRequest, WebhookResult } from "../../src/events/webhook-post.ts";
import { readEvents } from "../../src/queue/event-log.ts";
import { WebhookStore } from "../../src/queue/webhooks.ts";
import { FakeClock, settle } from "../helpers/fake-clock.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-webhooks-");

const T0 = 1_700_000_000_000;
const POLL = 600_000;
const HOUR = 3_600_000;
const BACKOFF: WebhookBackoff = { firstMs: 1000, maxMs: HOUR, windowMs: 24 * HOUR };
interface Sent {
  readonly id: string;
  readonly url: string;
  readonly eventIds: number[];
  readonly types: string[];
  readonly at: number;
}

/** A node's database with a webhook store and dispatcher over it; `answer` decides each delivery. */
async function world(
  /** Where batches come from: the store alone, or the event feed's kept events first. */
  reading: "the database" | "the event feed",
  answer: (request: WebhookRequest) => WebhookResult | Promise<WebhookResult>,
  /** What the dispatcher sees of the store; default the store itself. */
  seen: (store: WebhookStore) => WebhookStore = (store) => store,
  /** How many events the feed keeps. */
  keep?: number,
) {
  const { database } = await temporaryDatabase(T0);
  const clock = new FakeClock(T0);
  const store = new WebhookStore(database, clock);
  const sent: Sent[] = [];
  const logged: string[] = [];
  const log: Logger = (level, message) => void logged.push(`${level} ${message}`);
  const feed = reading === "the event feed"
    ? new EventFeed(
      {
        listEvents: (after, limit) => readEvents(database, after, limit),
        lastEventId: () => store.lastEventId(),
      },
      log,
      250,
      keep,
    )
    : undefined;
  await feed?.start();
  const dispatcher = new WebhookDispatcher({
    store: seen(store),
    recent: feed,
    clock,
    log,
    timeoutMs: 10_000,
    backoff: BACKOFF,
    batchSize: 3,
    pollMs: POLL,
    random: () => 1,
    post: async (request) => {
      const body = JSON.parse(new TextDecoder().decode(request.body));
      sent.push({
        id: request.headers["webhook-id"]!,
        url: request.url.href,
        eventIds: body.data.events.map((e: { id: number }) => e.id),
        types: body.data.events.map((e: { type: string }) => e.type),
        at: clock.now(),
      });
      return await answer(request);
    },
  });
  const addEvents = async (...types: string[]) => {
    for (const type of types) {
      await database.client.execute({
        sql: "INSERT INTO events (at, type, message_id, recipient, data) VALUES (?, ?, 'm1', 'r@x.test', '{}')",
        args: [clock.now(), type],
      });
    }
  };
  /** The feed reads what was written (as the node's job does every 250 ms). */
  const read = async () => await feed?.run();
  /** One poll: the time moves to it, and everything it started ends. */
  const poll = async () => {
    await read();
    await clock.advance(POLL);
    await dispatcher.settled();
  };
  const register = (url: string, eventTypes = ["*"]) =>
    store.create({ id: `wh_${url}`, url, eventTypes, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" });
  dispatcher.start();
  await clock.advance(0); // its first look, at start
  await dispatcher.settled();
  return { store, dispatcher, clock, sent, logged, addEvents, read, poll, register, database };
}

const OK: WebhookResult = { ok: true, status: 204 };
const DOWN: WebhookResult = { ok: false, reason: "HTTP 503" };

describe("webhook backoff", () => {
  it("doubles from the first delay up to the cap, with jitter between half and all of it", () => {
    assert.deepEqual([1, 2, 3, 4].map((n) => retryDelay(n, BACKOFF, () => 1)), [1000, 2000, 4000, 8000]);
    assert.equal(retryDelay(30, BACKOFF, () => 1), HOUR);
    assert.equal(retryDelay(1000, BACKOFF, () => 1), HOUR, "no overflow however many attempts");
    assert.equal(retryDelay(3, BACKOFF, () => 0), 2000);
  });

  it("ends the retries only once the window since the first failure has passed", () => {
    assert.equal(retriesOver(T0, T0 + 24 * HOUR - 1, BACKOFF), false);
    assert.equal(retriesOver(T0, T0 + 24 * HOUR, BACKOFF), true);
  });
});

for (const reading of ["the database", "the event feed"] as const) {
  describe(`webhook dispatcher, events read from ${reading}`, () => {
    it("sends the events written after registration in batches, in log order, each batch once", async () => {
      const w = await world(reading, () => OK);
      await w.addEvents("received");
      await w.register("http://a.test/");
      await w.addEvents("received", "delivered", "received", "deferred", "delivered", "received", "bounced");
      await w.poll();
      assert.deepEqual(w.sent.map((s) => s.eventIds), [[2, 3, 4], [5, 6, 7], [8]]);
      assert.deepEqual(w.sent.map((s) => s.id), ["evt_2_4", "evt_5_7", "evt_8_8"]);
      const row = (await w.store.get("wh_http://a.test/"))!;
      assert.equal(row.cursor, 8);
      assert.equal(row.lastError, null);
      await w.poll();
      assert.equal(w.sent.length, 3, "nothing sent twice");
      await w.dispatcher.stop();
    });

    it("after a short batch, what comes meanwhile waits for the next poll and goes together", async () => {
      let meanwhile: (() => Promise<void>) | undefined;
      const w = await world(reading, async () => {
        // Mail flows while a batch is out: two events are written before it is answered.
        const writing = meanwhile;
        meanwhile = undefined;
        await writing?.();
        return OK;
      });
      meanwhile = () => w.addEvents("received", "delivered");
      await w.register("http://a.test/");
      await w.addEvents("received");
      await w.poll();
      assert.deepEqual(w.sent.map((s) => s.eventIds), [[1]], "the loop ended with the short batch");
      await w.poll();
      assert.deepEqual(w.sent.map((s) => s.eventIds), [[1], [2, 3]]);
      await w.dispatcher.stop();
    });

    it("sends only the types an endpoint wants, and moves past the others", async () => {
      const w = await world(reading, () => OK);
      await w.register("http://b.test/", ["delivered", "bounced"]);
      await w.addEvents("received", "delivered", "received", "deferred", "received", "received", "bounced");
      await w.poll();
      assert.deepEqual(w.sent.map((s) => s.types), [["delivered", "bounced"]]);
      await w.addEvents("received", "received");
      await w.poll();
      assert.equal(w.sent.length, 1);
      assert.equal((await w.store.get("wh_http://b.test/"))!.cursor, 9);
      assert.deepEqual(await w.store.backlogs(), [{ id: "wh_http://b.test/", backlog: 0, deadLetters: 0 }]);
      await w.dispatcher.stop();
    });

    it("retries a failed batch whole, same id and events, with backoff, before anything later", async () => {
      let answers = [DOWN, DOWN, OK];
      const w = await world(reading, () => answers.shift() ?? OK);
      await w.register("http://c.test/");
      await w.addEvents("received", "delivered");
      await w.poll();
      assert.deepEqual(w.sent.map((s) => [s.id, s.eventIds]), [["evt_1_2", [1, 2]]]);
      let row = (await w.store.get("wh_http://c.test/"))!;
      assert.deepEqual([row.attempts, row.nextAttemptAt! - w.clock.now(), row.lastError], [1, 1000, "HTTP 503"]);
      await w.addEvents("received"); // written meanwhile: not part of the batch being retried
      assert.equal((await w.store.backlogs())[0]!.backlog, 3);
      await w.poll();
      row = (await w.store.get("wh_http://c.test/"))!;
      assert.deepEqual([row.attempts, row.nextAttemptAt! - w.clock.now()], [2, 2000]);
      await w.poll();
      assert.deepEqual(w.sent.map((s) => [s.id, s.eventIds]), [
        ["evt_1_2", [1, 2]],
        ["evt_1_2", [1, 2]],
        ["evt_1_2", [1, 2]],
        ["evt_3_3", [3]],
      ]);
      row = (await w.store.get("wh_http://c.test/"))!;
      assert.deepEqual([row.cursor, row.attempts, row.batchEnd, row.lastError], [3, 0, null, null]);
      answers = [];
      await w.dispatcher.stop();
    });

    it("keeps retrying for 24 hours, then keeps the batch as dead letters and goes on; a replay sends them again", async () => {
      let up = false;
      const w = await world(reading, () => (up ? OK : DOWN));
      await w.register("http://d.test/");
      await w.addEvents("received", "delivered", "received", "bounced");
      await w.poll();
      const firstFailure = w.sent[0]!.at;
      while (w.clock.now() < firstFailure + 25 * HOUR) await w.poll();
      const attempts = w.sent.filter((s) => s.id === "evt_1_3");
      assert.ok(attempts.length > 10, `${attempts.length} attempts`);
      assert.ok(attempts.at(-1)!.at >= firstFailure + 24 * HOUR, "retried for at least 24 hours");
      for (let i = 1; i < attempts.length - 1; i++) {
        assert.ok(attempts[i + 1]!.at - attempts[i]!.at <= HOUR + POLL, "no pause longer than the cap (and a poll)");
      }
      const letters = await w.store.deadLetters("wh_http://d.test/", 0, 100);
      assert.deepEqual(letters.map((l) => l.eventId), [1, 2, 3]);
      assert.deepEqual(letters.map((l) => l.event.type), ["received", "delivered", "received"]);
      assert.equal(letters[0]!.lastError, "HTTP 503");
      assert.ok(w.sent.some((s) => s.id === "evt_4_4"), "the next batch is tried once the first is dead");
      assert.ok(w.logged.some((l) => l.startsWith("error webhook batch failed for the whole retry window")));

      up = true;
      assert.equal(await w.store.replay("wh_http://d.test/", [2, 3]), 2);
      assert.deepEqual(await w.store.backlogs(), [{ id: "wh_http://d.test/", backlog: 3, deadLetters: 1 }]);
      const recovered = w.sent.length;
      await w.poll();
      // The live batch being retried goes first (it holds the head), then the replay, then nothing more.
      assert.deepEqual(w.sent.slice(recovered).map((s) => [s.id, s.eventIds]), [["evt_4_4", [4]], ["evt_2_3", [2, 3]]]);
      assert.deepEqual((await w.store.deadLetters("wh_http://d.test/", 0, 100)).map((l) => l.eventId), [1]);
      assert.deepEqual(await w.store.backlogs(), [{ id: "wh_http://d.test/", backlog: 0, deadLetters: 1 }]);
      await w.dispatcher.stop();
    });

    it("lets a hung endpoint hold up only itself; stop cancels it and leaves its cursor where it was", async () => {
      const w = await world(
        reading,
        (request) =>
          request.url.hostname === "hung.test"
            ? new Promise<WebhookResult>((resolve) =>
              request.signal!.addEventListener("abort", () => resolve({ ok: false, reason: "cancelled" }))
            )
            : OK,
      );
      await w.register("http://hung.test/");
      await w.register("http://fine.test/");
      await w.addEvents("received", "delivered", "received", "delivered");
      await w.read();
      await w.clock.advance(POLL);
      const fine = () => w.sent.filter((s) => s.url === "http://fine.test/").flatMap((s) => s.eventIds);
      assert.deepEqual(await waitUntil(fine, (ids) => ids.length >= 4, { what: "the fine endpoint's events" }), [
        1,
        2,
        3,
        4,
      ]);
      assert.deepEqual(w.sent.filter((s) => s.url === "http://hung.test/").map((s) => s.id), ["evt_1_3"]);
      await w.dispatcher.stop();
      const hung = (await w.store.get("wh_http://hung.test/"))!;
      assert.deepEqual([hung.cursor, hung.attempts], [0, 0], "a cancelled delivery is not a failure, nor a success");
    });

    it("never sends a batch again that a loop ending meanwhile had delivered", async () => {
      const noRelease = () => {};
      let release: (result: WebhookResult) => void = noRelease;
      let armed = false;
      const w = await world(
        reading,
        // The first delivery waits to be released; any later one is taken at once.
        () => (release === noRelease ? new Promise<WebhookResult>((resolve) => (release = resolve)) : OK),
        (store) =>
          Object.assign(Object.create(store), {
            // The list is read, then the loop in flight takes its batch and ends before the look goes on.
            async list() {
              const rows = await store.list();
              if (armed) {
                armed = false;
                release(OK);
                await waitUntil(() => store.get("wh_http://e.test/"), (r) => r!.cursor === 2, {
                  what: "the batch taken",
                });
                await settle();
              }
              return rows;
            },
          }),
      );
      await w.register("http://e.test/");
      await w.addEvents("received", "delivered");
      await w.read();
      await w.clock.advance(POLL);
      await waitUntil(() => w.sent.length, (n) => n === 1, { what: "the first delivery in flight" });
      armed = true;
      await w.poll();
      await w.poll();
      assert.deepEqual(w.sent.map((s) => s.id), ["evt_1_2"]);
      await w.dispatcher.stop();
    });
  });
}

describe("webhook dispatcher with the event feed", () => {
  /** The store as the dispatcher sees it, counting the events it is asked for. */
  const counting = (read: number[]) => (store: WebhookStore) =>
    Object.assign(Object.create(store), {
      async eventsFor(...args: Parameters<WebhookStore["eventsFor"]>) {
        const events = await store.eventsFor(...args);
        read.push(...events.map((e) => e.id));
        return events;
      },
    });

  it("takes an endpoint's batches from the events the feed read, not from the database again", async () => {
    const read: number[] = [];
    const w = await world("the event feed", () => OK, counting(read));
    await w.register("http://a.test/");
    await w.addEvents("received", "delivered", "received", "deferred", "delivered");
    await w.poll();
    assert.deepEqual(w.sent.map((s) => s.eventIds), [[1, 2, 3], [4, 5]]);
    assert.deepEqual(read, [], "no event read from the store");
    await w.dispatcher.stop();
  });

  it("reads from the database what the feed no longer keeps, and sends every event once, in order", async () => {
    const read: number[] = [];
    let up = false;
    const w = await world("the event feed", () => (up ? OK : DOWN), counting(read), 4);
    await w.register("http://a.test/", ["delivered"]);
    await w.addEvents("delivered", "received");
    await w.poll(); // fails: the batch [1] waits for its retry
    await w.addEvents("delivered", "received", "delivered", "received", "delivered", "delivered");
    up = true;
    await w.poll();
    await w.poll();
    assert.deepEqual(w.sent.map((s) => s.eventIds), [[1], [1], [3, 5, 7], [8]]);
    assert.deepEqual(read, [1, 3, 5, 7], "the retry and the batch after it were older than the four kept");
    await w.dispatcher.stop();
  });

  it("reads an endpoint's row once for a run of batches, and writes its cursor once a batch", async () => {
    const calls: string[] = [];
    const w = await world("the event feed", () => OK, (store) =>
      Object.assign(Object.create(store), {
        get: (id: string) => (calls.push("get"), store.get(id)),
        replaying: (id: string, limit: number) => (calls.push("replaying"), store.replaying(id, limit)),
        advance: (...args: Parameters<WebhookStore["advance"]>) => (calls.push("advance"), store.advance(...args)),
      }));
    await w.register("http://a.test/");
    await w.addEvents(...Array.from({ length: 7 }, () => "delivered"));
    await w.poll();
    assert.deepEqual(w.sent.map((s) => s.eventIds), [[1, 2, 3], [4, 5, 6], [7]]);
    assert.deepEqual(calls, ["get", "advance", "advance", "advance"]);
    await w.dispatcher.stop();
  });
});
