import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EventFeed, type EventSource } from "../../src/events/feed.ts";
import type { EventRecord } from "../../src/queue/event-log.ts";

/** An event log in memory, in id order. */
function logOf(count: number): EventRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    at: i,
    type: "received" as const,
    messageId: `m${i + 1}`,
    recipient: "a@b.test",
    data: {},
  }));
}

function sourceOver(log: EventRecord[]): EventSource {
  return {
    listEvents: (after, limit) => Promise.resolve(log.filter((e) => e.id > after).slice(0, limit)),
    lastEventId: () => Promise.resolve(log.at(-1)?.id ?? 0),
  };
}

const quiet = () => {};

describe("EventFeed", () => {
  it("starts after the events that were there at start and hands on every later one once, in order", async () => {
    const log = logOf(3);
    const feed = new EventFeed(sourceOver(log), quiet);
    const seen: number[] = [];
    feed.subscribe((page) => seen.push(...page.map((e) => e.id)));
    await feed.run();
    assert.deepEqual(seen, []);
    log.push(...logOf(2503).slice(3));
    await feed.run();
    await feed.run();
    assert.deepEqual(seen, Array.from({ length: 2500 }, (_, i) => i + 4));
  });

  it("started, it hands on the events written before its first run", async () => {
    const log = logOf(3);
    const feed = new EventFeed(sourceOver(log), quiet);
    const seen: number[] = [];
    feed.subscribe((page) => seen.push(...page.map((e) => e.id)));
    await feed.start();
    log.push(...logOf(5).slice(3));
    await feed.run();
    assert.deepEqual(seen, [4, 5]);
  });

  it("a subscriber that throws is logged and the others still get the page", async () => {
    const log: EventRecord[] = [];
    const errors: string[] = [];
    const failing = new EventFeed(sourceOver(log), (_level, message) => errors.push(message));
    const seen: number[] = [];
    failing.subscribe(() => {
      throw new Error("boom");
    });
    failing.subscribe((page) => seen.push(...page.map((e) => e.id)));
    await failing.run();
    log.push(...logOf(2));
    await failing.run();
    assert.deepEqual(seen, [1, 2]);
    assert.deepEqual(errors, ["an event subscriber failed"]);
  });

  it("after start(), the events written before the first run are handed on too", async () => {
    const log = logOf(3);
    const feed = new EventFeed(sourceOver(log), quiet);
    const seen: number[] = [];
    feed.subscribe((page) => seen.push(...page.map((e) => e.id)));
    await feed.start();
    log.push(...logOf(5).slice(3));
    await feed.run();
    assert.deepEqual(seen, [4, 5]);
  });

  it("keeps the newest events it read, with no holes, and answers only for a stretch it holds whole", async () => {
    const log = logOf(2);
    const feed = new EventFeed(sourceOver(log), quiet, 250, 1500);
    await feed.start();
    assert.equal(feed.newest, 2);
    assert.deepEqual(feed.between(2, 2), [], "nothing after the start, up to it");
    assert.equal(feed.between(1, 2), undefined, "before the start: not read");
    log.push(...logOf(2002).slice(2));
    await feed.run();
    assert.equal(feed.newest, 2002);
    assert.deepEqual(feed.between(600, 603)?.map((e) => e.id), [601, 602, 603]);
    assert.deepEqual(feed.between(2000, 2002)?.map((e) => e.id), [2001, 2002]);
    assert.equal(feed.between(501, 510), undefined, "older than the 1,500 kept");
    assert.deepEqual(feed.between(502, 503)?.map((e) => e.id), [503], "the oldest kept");
    assert.equal(feed.between(2000, 2003), undefined, "not read yet");
  });
});
