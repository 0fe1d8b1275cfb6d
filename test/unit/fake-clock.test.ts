/** The fake clock the unit tests run on: timers fire in due order, and each one's work settles before the next. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeClock } from "../helpers/fake-clock.ts";

describe("FakeClock", () => {
  it("advance() fires the timers due on the way in due order, each at its due time, and none later than the target", async () => {
    const clock = new FakeClock(1000);
    const fired: string[] = [];
    const note = (name: string) => () => fired.push(`${name}@${clock.now()}`);
    clock.setTimeout(note("c"), 30);
    clock.setTimeout(note("a"), 10);
    clock.setTimeout(note("b"), 10);
    clock.setTimeout(note("late"), 31);
    await clock.advance(30);
    assert.deepEqual(fired, ["a@1010", "b@1010", "c@1030"]);
    assert.equal(clock.now(), 1030);
    assert.deepEqual(clock.pending, [31]);
  });

  it("what a timer starts settles before the next fires, and a timer it sets fires too when due on the way", async () => {
    const clock = new FakeClock(0);
    const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
    const steps: string[] = [];
    void (async () => {
      await sleep(10);
      await Promise.resolve();
      steps.push(`slept@${clock.now()}`);
      await sleep(5);
      steps.push(`again@${clock.now()}`);
    })();
    clock.setTimeout(() => steps.push(`timer@${clock.now()}`), 12);
    await clock.advance(20);
    assert.deepEqual(steps, ["slept@10", "timer@12", "again@15"]);
  });

  it("a cleared timer does not fire", async () => {
    const clock = new FakeClock(0);
    let fired = false;
    clock.clearTimeout(clock.setTimeout(() => (fired = true), 5));
    await clock.advance(10);
    assert.equal(fired, false);
  });

  it("set() steps the time of day without firing timers, which stay as far off as they were", async () => {
    const clock = new FakeClock(5000);
    let firedAt: number | undefined;
    clock.setTimeout(() => (firedAt = clock.now()), 100);
    clock.set(1000);
    assert.equal(firedAt, undefined);
    await clock.advance(99);
    assert.equal(firedAt, undefined);
    await clock.advance(1);
    assert.equal(firedAt, 1100);
  });
});
