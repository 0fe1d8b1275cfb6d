import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Warmup, WarmupPlan } from "../../src/shaping/rules.ts";
import { shippedShaping } from "../../src/shaping/shipped.ts";
import type { Lane } from "../../src/core/lane.ts";
import { WarmupLedger, type WarmupOutcome } from "../../src/shaping/warmup-ledger.ts";
import type { WarmupRecord } from "../../src/shaping/warmup-window.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

/**
 * IP warmup's ledger over a simulated month (a fake clock): a backlog larger
 * than every cap goes out as fast as the ledger allows, the outcomes follow
 * a schedule of rates, and the counts are checked hour by hour and day by day.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const IP = "192.0.2.7";

/** The shipped plan, switched on. */
const shipped: Warmup = { ...shippedShaping().rules.warmup!, enabled: true };
const plan = shipped.default;

/** The rates of one simulated day's replies. */
interface DayRates {
  readonly deferral?: number;
  readonly block?: number;
  readonly complaint?: number;
}

/** Whether the nth message of a day is one of a share `rate` of them, spread evenly. */
const isNth = (nth: number, rate = 0) => Math.floor((nth + 1) * rate) > Math.floor(nth * rate);

function outcomesOf(nth: number, rates: DayRates): WarmupOutcome[] {
  if (isNth(nth, rates.deferral)) return ["deferred"];
  if (isNth(nth, rates.block)) return ["blocked"];
  return isNth(nth, rates.complaint) ? ["delivered", "complained"] : ["delivered"];
}

/**
 * Send a backlog that never runs dry until `until`: each message when the
 * ledger allows it, its outcome at once. Returns the send times.
 */
async function drain(
  ledger: WarmupLedger,
  clock: FakeClock,
  options: { provider?: string; lane?: Lane; until: number; rates?: (day: number) => DayRates },
): Promise<number[]> {
  const { provider = "google", lane = "transactional", until, rates = () => ({}) } = options;
  const start = clock.now();
  const times: number[] = [];
  const perDay = new Map<number, number>();
  for (;;) {
    const at = ledger.nextSendAt(IP, provider, lane, clock.now());
    if (at < clock.now()) assert.fail("a time in the past");
    if (at >= until) break;
    if (at > clock.now()) await clock.advance(at - clock.now());
    ledger.sent(IP, provider, lane, at);
    const day = Math.floor((at - start) / DAY);
    const nth = perDay.get(day) ?? 0;
    perDay.set(day, nth + 1);
    for (const outcome of outcomesOf(nth, rates(day))) ledger.outcome(IP, provider, outcome, at);
    times.push(at);
  }
  await clock.advance(until - clock.now());
  return times;
}

/** How many of `times` fall in each period of `length` from `start`. */
function countPer(times: readonly number[], start: number, length: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (const t of times) {
    const period = Math.floor((t - start) / length);
    counts.set(period, (counts.get(period) ?? 0) + 1);
  }
  return counts;
}

describe("IP warmup over a simulated month", () => {
  it("caps hold every hour and day; clean days promote, rates between the lines hold, rates above demote", async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const ledger = new WarmupLedger(shipped);
    // The replies of each day, and the step (0-based) each day runs at as a result.
    const schedule: Record<number, DayRates> = {
      12: { deferral: 0.1 }, // between 5% and 20%: held
      13: { deferral: 0.1 }, // held again
      14: { deferral: 0.3 }, // above 20%: back a step
      15: { block: 0.02 }, // between 1% and 5%: held
      16: { complaint: 0.005 }, // above 0.3%: back a step
    };
    const expectedStep = (day: number) => day <= 12 ? day : day <= 14 ? 12 : day <= 16 ? 11 : 10 + (day - 17);
    const days = 30;
    const times = await drain(ledger, clock, { until: start + days * DAY, rates: (day) => schedule[day] ?? {} });

    const perDay = countPer(times, start, DAY);
    const perHour = countPer(times, start, HOUR);
    for (let day = 0; day < days; day++) {
      const caps = plan.steps[expectedStep(day)]!;
      // The backlog is larger than any cap: each day sends exactly its cap, no more.
      assert.equal(perDay.get(day), caps.daily, `day ${day} at step ${expectedStep(day) + 1}`);
      for (let hour = day * 24; hour < (day + 1) * 24; hour++) {
        assert.ok((perHour.get(hour) ?? 0) <= caps.hourly, `hour ${hour}: ${perHour.get(hour)} > ${caps.hourly}`);
      }
    }
    // Spread, not front-loaded: consecutive messages are at least an hour / hourly cap apart.
    for (let i = 1; i < times.length; i++) {
      const caps = plan.steps[expectedStep(Math.floor((times[i]! - start) / DAY))]!;
      if (times[i]! - times[i - 1]! < HOUR / caps.hourly) assert.fail(`messages ${i - 1} and ${i} too close`);
    }

    const [entry] = ledger.report(clock.now());
    assert.equal(entry?.step, expectedStep(days));
    assert.equal(entry?.steps, plan.steps.length);
    assert.equal(entry?.stepSince, start + days * DAY, "promoted when the last window ended");
  });

  it("a step's first hour goes out evenly across the hour, not at its start", async () => {
    const clock = new FakeClock();
    const ledger = new WarmupLedger(shipped);
    const times = await drain(ledger, clock, { until: clock.now() + HOUR });
    const hourly = plan.steps[0]!.hourly;
    assert.equal(times.length, hourly);
    assert.ok(times.at(-1)! - times[0]! >= ((hourly - 1) * HOUR) / hourly, "the last one late in the hour");
  });

  it("mail over a cap waits for a later window; nothing is refused", async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const ledger = new WarmupLedger(shipped);
    const first = plan.steps[0]!;
    await drain(ledger, clock, { until: start + DAY - HOUR });
    // The day's cap is used: the next message may go when the day ends, with the step after it.
    assert.equal(ledger.nextSendAt(IP, "google", "transactional", clock.now()), start + DAY);
    assert.equal(ledger.report(clock.now())[0]?.day.sent, first.daily);
    await clock.advance(HOUR);
    assert.equal(ledger.nextSendAt(IP, "google", "transactional", clock.now()), clock.now());
    assert.equal(ledger.report(clock.now())[0]?.step, 1);
  });

  it("a ledger made from the written records keeps the hour's count, though not the spacing", async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const ledger = new WarmupLedger(shipped);
    const hourly = plan.steps[0]!.hourly;
    const times = await drain(ledger, clock, { until: start + HOUR - 1 });
    assert.equal(times.length, hourly);
    let written: WarmupRecord[] = [];
    await ledger.flush(async (records) => {
      written = [...records];
    });
    const restarted = new WarmupLedger(shipped, written);
    assert.equal(restarted.nextSendAt(IP, "google", "transactional", clock.now()), start + HOUR);
  });

  it("bulk uses at most 80% of each cap; transactional mail still goes after it", async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const ledger = new WarmupLedger(shipped);
    const caps = plan.steps[0]!; // 50 a day, 7 an hour
    const bulk = await drain(ledger, clock, { lane: "bulk", until: start + 12 * HOUR });
    assert.equal(bulk.length, Math.floor(caps.daily * 0.8));
    for (const count of countPer(bulk, start, HOUR).values()) assert.ok(count <= Math.floor(caps.hourly * 0.8));
    assert.ok(ledger.nextSendAt(IP, "google", "bulk", clock.now()) >= start + DAY, "bulk waits for the next day");

    const transactional = await drain(ledger, clock, { until: start + DAY });
    assert.equal(transactional.length, caps.daily - bulk.length, "the rest of the day's cap is transactional's");
    assert.equal(transactional[0], start + 12 * HOUR, "the first one at once");
  });

  it("a window with nothing sent holds; an idle pair is not promoted", () => {
    const clock = new FakeClock();
    const ledger = new WarmupLedger(shipped);
    ledger.nextSendAt(IP, "google", "bulk", clock.now());
    const [entry] = ledger.report(clock.now() + 5 * DAY);
    assert.equal(entry?.step, 0);
    assert.deepEqual(entry?.next && { action: entry.next.action, reason: entry.next.reason }, {
      action: "hold",
      reason: "nothing was sent in the window",
    });
  });

  it("past the last step the pair is warm: uncapped, and no longer judged", async () => {
    const short: WarmupPlan = { ...plan, steps: plan.steps.slice(0, 2) };
    const clock = new FakeClock();
    const start = clock.now();
    const ledger = new WarmupLedger({ ...shipped, default: short });
    await drain(ledger, clock, { until: start + 2 * DAY });
    const [warm] = ledger.report(clock.now());
    assert.equal(warm?.warm, true);
    assert.equal(warm?.caps, undefined);
    assert.equal(warm?.next, undefined);
    for (let i = 0; i < 1000; i++) {
      assert.equal(ledger.nextSendAt(IP, "google", "bulk", clock.now()), clock.now());
      ledger.sent(IP, "google", "bulk", clock.now());
      ledger.outcome(IP, "google", "blocked", clock.now());
    }
    assert.equal(ledger.report(clock.now() + DAY)[0]?.warm, true, "a day of blocks does not bring the caps back");
  });

  it("a provider's own plan applies to it; unknown MX and an unbound source IP have names of their own", () => {
    const clock = new FakeClock();
    const own: WarmupPlan = { ...plan, steps: [{ daily: 10, hourly: 2 }] };
    const ledger = new WarmupLedger({ ...shipped, providers: new Map([["yahoo", own]]) });
    ledger.sent(IP, "yahoo", "transactional", clock.now());
    ledger.sent(undefined, undefined, "transactional", clock.now());
    ledger.sent("2001:DB8:0::1", "google", "transactional", clock.now());
    const report = ledger.report(clock.now());
    assert.deepEqual(
      report.map((e) => [e.sourceIp, e.provider, e.caps?.daily]),
      [["192.0.2.7", "yahoo", 10], ["2001:db8::1", "google", 50], ["any", "other", 50]],
    );
  });

  it("the judgement at the lines: a rate at promote_below holds, a rate at demote_above holds", () => {
    const clock = new FakeClock();
    const judged = (deferred: number) => {
      const l = new WarmupLedger(shipped);
      for (let i = 0; i < 100; i++) l.sent(IP, "google", "transactional", clock.now());
      for (let i = 0; i < deferred; i++) l.outcome(IP, "google", "deferred", clock.now());
      return l.report(clock.now())[0]?.next?.action;
    };
    assert.equal(judged(4), "promote");
    assert.equal(judged(5), "hold");
    assert.equal(judged(20), "hold");
    assert.equal(judged(21), "demote");
  });
});
