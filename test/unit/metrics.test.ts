import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { firstIdAt } from "../../src/core/id.ts";
import type { EventRecord } from "../../src/queue/event-log.ts";
import { EventCounts } from "../../src/events/metrics/event-counts.ts";
import { LoopLagSampler } from "../../src/events/metrics/loop-lag.ts";
import { ProviderLabels } from "../../src/events/metrics/provider-labels.ts";
import { QueueDepth, TOP_DOMAINS } from "../../src/events/metrics/queue-depth.ts";
import type { InQueueCount } from "../../src/queue/records.ts";
import { Registry } from "../../src/events/metrics/registry.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { parseMetrics, sampleOf } from "../helpers/metrics.ts";

const quiet = () => {};

describe("metrics exposition (read back by prom2javascript)", () => {
  it("writes counters, gauges and histograms with HELP, TYPE and escaped labels", async () => {
    const registry = new Registry();
    const counter = registry.counter("t_events_total", 'Events \\ "counted"\nby kind', ["kind"]);
    counter.inc({ kind: 'a "quoted" \\ value\nover two lines' }, 2);
    counter.inc({ kind: "plain" });
    counter.inc({ kind: "plain" });
    registry.gauge("t_depth", "Depth", ["state"], () => [[{ state: "queued" }, 7], [{ state: "deferred" }, 0]]);
    registry.counterReading("t_kept_total", "Kept elsewhere", [], () => [[{}, 41]]);
    const histogram = registry.histogram("t_seconds", "Durations", ["provider"], [0.1, 1, 10]);
    for (const value of [0.05, 0.1, 0.5, 3, 20]) histogram.observe({ provider: "google" }, value);

    const text = await registry.expose();
    const families = await parseMetrics(text);
    const events = families["t_events_total"]!;
    assert.equal(events.type, "counter");
    // The parser gives HELP as written: backslash and line feed escaped.
    assert.equal(events.help, 'Events \\\\ "counted"\\nby kind');
    assert.equal(sampleOf(families, "t_events_total", { kind: 'a "quoted" \\ value\nover two lines' })?.value, 2);
    assert.equal(sampleOf(families, "t_events_total", { kind: "plain" })?.value, 2);
    assert.equal(families["t_depth"]!.type, "gauge");
    assert.equal(sampleOf(families, "t_depth", { state: "queued" })?.value, 7);
    assert.equal(sampleOf(families, "t_depth", { state: "deferred" })?.value, 0);
    assert.equal(families["t_kept_total"]!.type, "counter");
    assert.equal(sampleOf(families, "t_kept_total")?.value, 41);
    assert.equal(families["t_seconds"]!.type, "histogram");
    const series = sampleOf(families, "t_seconds", { provider: "google" })!;
    // Cumulative: le="0.1" holds 0.05 and 0.1 (bounds are inclusive), +Inf holds all.
    assert.deepEqual(series.buckets, { "0.1": 2, "1": 3, "10": 4, "+Inf": 5 });
    assert.equal(series.count, 5);
    assert.equal(series.sum, 23.65);
    assert.ok(text.endsWith("\n"), "the text ends with a line feed");
  });

  it("leaves out a family with no series and a gauge that cannot be read, and says which", async () => {
    const registry = new Registry();
    registry.counter("t_unused_total", "Never counted", ["kind"]);
    registry.gauge("t_broken", "Fails", [], () => Promise.reject(new Error("database gone")));
    registry.gauge("t_fine", "Works", [], () => [[{}, 1]]);
    const failed: string[] = [];
    const families = await parseMetrics(await registry.expose((name) => failed.push(name)));
    assert.deepEqual(Object.keys(families), ["t_fine"]);
    assert.deepEqual(failed, ["t_broken"]);
  });

  it("refuses names the format does not allow, a family registered twice and an le label", () => {
    const registry = new Registry();
    assert.throws(() => registry.counter("bad-name_total", "x"), /metric name "bad-name_total"/);
    assert.throws(() => registry.counter("t_total", "x", ["__reserved"]), /label name "__reserved"/);
    registry.counter("t_total", "x");
    assert.throws(() => registry.counter("t_total", "x"), /registered twice/);
    assert.throws(() => registry.histogram("t_h", "x", ["le"], [1]), /"le" is the bucket label/);
    assert.throws(() => registry.histogram("t_h2", "x", [], [2, 1]), /must ascend/);
  });
});

/** An event of the log, as the feed hands it on. */
function event(id: number, type: EventRecord["type"], recipient: string | null, data: Record<string, unknown> = {}) {
  return { id, at: 1_700_000_010_000, type, messageId: firstIdAt(1_700_000_000_000), recipient, data };
}

function eventCounts(lookup: (domain: string) => Promise<string | undefined>, clock = new FakeClock()) {
  const registry = new Registry();
  const counts = new EventCounts({
    events: registry.counter("relay_events_total", "Events", ["type", "provider", "category"]),
    timeInQueue: registry.histogram("relay_time_in_queue_seconds", "Time", ["outcome"], [1, 10, 100]),
    providers: new ProviderLabels(lookup, clock),
    log: quiet,
  });
  return { counts, metrics: async () => await parseMetrics(await registry.expose()) };
}

describe("EventCounts", () => {
  it("counts each event by type, its recipient's provider and its category, in a bounded set of labels", async () => {
    const looked: string[] = [];
    const { counts, metrics } = eventCounts(async (domain) => {
      looked.push(domain);
      return domain === "gmail.test" ? "google" : undefined;
    });
    counts.take([
      event(1, "received", "a@gmail.test"),
      event(2, "received", "b@Unknown.test"),
      event(3, "deferred", "a@gmail.test", { category: "greylisting", attempt: 1 }),
      event(4, "bounced", "b@unknown.test", { category: "bad-mailbox", bounce_type: "hard", attempt: 1 }),
      event(5, "bounced", "c@unknown.test", { category: "something new" }),
    ]);
    counts.take([
      event(6, "delivered", "a@gmail.test", { attempt: 2 }),
      event(7, "destination_throttled", null, { provider: "google" }),
      event(8, "domain_changed", null, { domain: "sender.test" }),
    ]);
    await counts.settled();
    const families = await metrics();
    const count = (type: string, provider: string, category: string) =>
      sampleOf(families, "relay_events_total", { type, provider, category })?.value;
    assert.equal(count("received", "google", "none"), 1);
    assert.equal(count("received", "other", "none"), 1);
    assert.equal(count("deferred", "google", "greylisting"), 1);
    assert.equal(count("bounced", "other", "bad-mailbox"), 1);
    assert.equal(count("bounced", "other", "other"), 1, "a category outside the list is counted as other");
    assert.equal(count("delivered", "google", "none"), 1);
    assert.equal(count("destination_throttled", "google", "none"), 1);
    assert.equal(count("domain_changed", "other", "none"), 1);
    assert.equal(families["relay_events_total"]!.data.length, 8);
    // Each domain looked up once (its case folded), however many events name it.
    assert.deepEqual(looked.sort(), ["gmail.test", "unknown.test"]);
    // Time in queue: the outcomes delivery decided (an attempt is named), from the message id's time to the event.
    const delivered = sampleOf(families, "relay_time_in_queue_seconds", { outcome: "delivered" })!;
    assert.equal(delivered.count, 1);
    assert.equal(delivered.sum, 10);
    assert.equal(sampleOf(families, "relay_time_in_queue_seconds", { outcome: "bounced" })?.count, 1);
  });

  it("labels a domain whose lookup failed other, and looks it up again next time", async () => {
    let fail = true;
    const { counts, metrics } = eventCounts(async () => {
      if (fail) throw new Error("DNS timed out");
      return "google";
    });
    counts.take([event(1, "received", "a@gmail.test")]);
    await counts.settled();
    fail = false;
    counts.take([event(2, "received", "a@gmail.test")]);
    await counts.settled();
    const families = await metrics();
    assert.equal(sampleOf(families, "relay_events_total", { provider: "other" })?.value, 1);
    assert.equal(sampleOf(families, "relay_events_total", { provider: "google" })?.value, 1);
  });

  it("asks again for a domain's provider once it is old", async () => {
    const clock = new FakeClock();
    let provider = "google";
    const { counts, metrics } = eventCounts(async () => provider, clock);
    counts.take([event(1, "received", "a@moved.test")]);
    await counts.settled();
    provider = "microsoft";
    counts.take([event(2, "received", "a@moved.test")]);
    await counts.settled();
    await clock.advance(11 * 60_000);
    counts.take([event(3, "received", "a@moved.test")]);
    await counts.settled();
    const families = await metrics();
    assert.equal(sampleOf(families, "relay_events_total", { provider: "google" })?.value, 2);
    assert.equal(sampleOf(families, "relay_events_total", { provider: "microsoft" })?.value, 1);
  });
});

describe("QueueDepth", () => {
  it("shows the domains with the most pending recipients by name and sums the rest as other", async () => {
    const counts: InQueueCount[] = Array.from({ length: TOP_DOMAINS + 5 }, (_, i) => ({
      domain: `d${String(i).padStart(2, "0")}.test`,
      queued: i,
      deferred: 1,
      held: i % 2,
    }));
    const depth = new QueueDepth(async () => counts, new FakeClock());
    const byDomain = [...await depth.byDomain()];
    const named = byDomain.filter(([labels]) => labels.domain !== "other");
    assert.equal(named.length, 3 * TOP_DOMAINS);
    // The five smallest (d00..d04: 0..4 queued, 1 deferred, 0 or 1 held each) are "other".
    assert.deepEqual(byDomain.filter(([labels]) => labels.domain === "other"), [
      [{ state: "queued", domain: "other" }, 0 + 1 + 2 + 3 + 4],
      [{ state: "deferred", domain: "other" }, 5],
      [{ state: "held", domain: "other" }, 2],
    ]);
    assert.ok(!named.some(([labels]) => labels.domain === "d04.test"));
    const total = Object.fromEntries([...await depth.total()].map(([labels, n]) => [labels.state, n]));
    const queued = counts.reduce((n, c) => n + c.queued, 0);
    assert.deepEqual(total, { queued, deferred: TOP_DOMAINS + 5, held: Math.floor((TOP_DOMAINS + 5) / 2) });
  });

  it("counts at most once in a while, and once for scrapes that come together", async () => {
    const clock = new FakeClock();
    let counted = 0;
    let pending = 3;
    const depth = new QueueDepth(async () => {
      counted += 1;
      return [{ domain: "a.test", queued: pending, deferred: 0, held: 0 }];
    }, clock);
    const queuedNow = async () => [...await depth.total()].find(([labels]) => labels.state === "queued")![1];
    assert.deepEqual(await Promise.all([queuedNow(), queuedNow(), queuedNow()]), [3, 3, 3]);
    assert.equal(counted, 1);
    pending = 9;
    await clock.advance(1000);
    assert.equal(await queuedNow(), 3, "reused within a few seconds");
    assert.equal(counted, 1);
    await clock.advance(5000);
    assert.equal(await queuedNow(), 9);
    assert.equal(counted, 2);
  });

  it("reuses a count longer the longer it took", async () => {
    const clock = new FakeClock();
    let counted = 0;
    const depth = new QueueDepth(async () => {
      counted += 1;
      await clock.advance(1000); // a deep queue: the count takes a second
      return [];
    }, clock);
    await depth.total();
    await clock.advance(99_000);
    await depth.total();
    assert.equal(counted, 1, "100 times its cost: reused for 100 s");
    await clock.advance(1_000);
    await depth.total();
    assert.equal(counted, 2);
  });
});

describe("LoopLagSampler", () => {
  it("measures how late each timer fired", () => {
    let now = 0;
    const timers: { at: number; fire: () => void }[] = [];
    const clock = {
      now: () => now,
      setTimeout: (fire: () => void, ms: number) => timers.push({ at: now + ms, fire }),
      clearTimeout: () => {},
    };
    const lags: number[] = [];
    const sampler = new LoopLagSampler(clock, (ms) => lags.push(ms));
    sampler.start();
    for (const late of [0, 30, 250]) {
      const timer = timers.shift()!;
      now = timer.at + late; // the loop was busy for `late` ms when the timer was due
      timer.fire();
    }
    assert.deepEqual(lags, [0, 30, 250]);
    assert.equal(sampler.last, 250);
  });
});
