import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IdleTimer, type Timers } from "../../src/smtp/server/idle-timer.ts";

/** Timers on a clock moved by hand; counts the timers set and cleared. */
function fakeTimers() {
  let now = 0;
  let nextId = 0;
  const pending = new Map<number, { at: number; fire: () => void }>();
  const counts = { set: 0, cleared: 0 };
  const timers: Timers = {
    now: () => now,
    setTimeout(fire, ms) {
      counts.set++;
      pending.set(++nextId, { at: now + ms, fire });
      return nextId;
    },
    clearTimeout(handle) {
      if (pending.delete(handle as number)) counts.cleared++;
    },
  };
  /** Move the clock to `to`, firing what falls due on the way, in order. */
  const at = (to: number) => {
    for (;;) {
      const due = [...pending].filter(([, t]) => t.at <= to).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      pending.delete(due[0]);
      now = due[1].at;
      due[1].fire();
    }
    now = to;
  };
  return { timers, counts, at, pending };
}

describe("IdleTimer", () => {
  it("fires once the full time has passed since the last touch, not since the first", () => {
    const t = fakeTimers();
    const fired: number[] = [];
    const idle = new IdleTimer(300, () => fired.push(t.timers.now()), t.timers);
    idle.touch();
    t.at(100);
    idle.touch();
    t.at(250);
    idle.touch();
    t.at(549);
    assert.deepEqual(fired, []);
    t.at(550);
    assert.deepEqual(fired, [550]);
    t.at(5_000);
    assert.deepEqual(fired, [550], "once");
  });

  it("keeps one timer however often it is touched", () => {
    const t = fakeTimers();
    const idle = new IdleTimer(300, () => {}, t.timers);
    for (let i = 0; i < 1_000; i++) {
      t.at(i / 10);
      idle.touch();
    }
    assert.equal(t.counts.set, 1);
    assert.equal(t.counts.cleared, 0);
    assert.equal(t.pending.size, 1);
  });

  it("a touch from onIdle (a hook still working) starts a full quiet time again", () => {
    const t = fakeTimers();
    const fired: number[] = [];
    let busy = true;
    const idle = new IdleTimer(300, () => {
      fired.push(t.timers.now());
      if (busy) idle.touch();
    }, t.timers);
    idle.touch();
    t.at(300);
    busy = false;
    t.at(599);
    assert.deepEqual(fired, [300]);
    t.at(600);
    assert.deepEqual(fired, [300, 600]);
  });

  it("stop cancels it; a touch after a stop starts it again", () => {
    const t = fakeTimers();
    const fired: number[] = [];
    const idle = new IdleTimer(300, () => fired.push(t.timers.now()), t.timers);
    idle.touch();
    t.at(100);
    idle.stop();
    assert.equal(t.pending.size, 0);
    t.at(1_000);
    assert.deepEqual(fired, []);
    idle.touch();
    t.at(1_300);
    assert.deepEqual(fired, [1_300]);
  });
});
