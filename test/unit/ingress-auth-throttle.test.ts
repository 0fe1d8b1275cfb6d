import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AuthThrottle, DEFAULT_AUTH_THROTTLE } from "../../src/ingress/auth-throttle.ts";

function setup(overrides: Partial<typeof DEFAULT_AUTH_THROTTLE> = {}) {
  let now = 1_000_000;
  const clock = { now: () => now };
  const throttle = new AuthThrottle(clock, { ...DEFAULT_AUTH_THROTTLE, ...overrides });
  return { throttle, advance: (ms: number) => (now += ms) };
}

describe("AuthThrottle", () => {
  it("allows without delay until slowAfter attempts, then slows down step by step, capped", () => {
    const { throttle } = setup({ slowAfter: 2, refuseAfter: 100, delayStepMs: 1000, maxDelayMs: 3000 });
    assert.deepEqual(throttle.attempt("192.0.2.1"), { kind: "allow", delayMs: 0, suspect: false });
    assert.deepEqual(throttle.attempt("192.0.2.1"), { kind: "allow", delayMs: 0, suspect: true });
    assert.deepEqual(throttle.attempt("192.0.2.1"), { kind: "allow", delayMs: 1000, suspect: true });
    assert.deepEqual(throttle.attempt("192.0.2.1"), { kind: "allow", delayMs: 2000, suspect: true });
    for (let i = 0; i < 5; i++) throttle.attempt("192.0.2.1");
    assert.deepEqual(throttle.attempt("192.0.2.1"), { kind: "allow", delayMs: 3000, suspect: true });
    assert.deepEqual(
      throttle.attempt("192.0.2.2"),
      { kind: "allow", delayMs: 0, suspect: false },
      "other addresses are not affected",
    );
  });

  it("refuses after refuseAfter attempts for the lockout, then forgets", () => {
    const { throttle, advance } = setup({ refuseAfter: 3, lockoutMs: 60_000, windowMs: 10_000, maxDelayMs: 5000 });
    for (let i = 0; i < 3; i++) assert.equal(throttle.attempt("198.51.100.7").kind, "allow");
    assert.deepEqual(throttle.attempt("198.51.100.7"), { kind: "refuse", delayMs: 5000, retryAfterMs: 60_000 });
    advance(59_999);
    assert.equal(throttle.attempt("198.51.100.7").kind, "refuse");
    advance(1);
    assert.deepEqual(throttle.attempt("198.51.100.7"), { kind: "allow", delayMs: 0, suspect: false });
  });

  it("counts attempts made at once before any is answered: no more than refuseAfter are let through", () => {
    // Many connections from one address sending AUTH at the same moment: every one asks before any password is checked.
    const { throttle } = setup({ refuseAfter: 10 });
    const gates = Array.from({ length: 50 }, () => throttle.attempt("203.0.113.50"));
    assert.equal(gates.filter((g) => g.kind === "allow").length, 10);
    assert.equal(gates.filter((g) => g.kind === "refuse").length, 40);
  });

  it("checks suspects one at a time, each followed by a rest four times as long as it took", async () => {
    let now = 0;
    const rests: number[] = [];
    const throttle = new AuthThrottle({ now: () => now }, DEFAULT_AUTH_THROTTLE, async (ms) => {
      rests.push(ms);
      now += ms;
    });
    let running = 0;
    let most = 0;
    const check = (ms: number, fail = false) => async () => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 1));
      now += ms;
      running--;
      if (fail) throw new Error("the store is down");
      return ms;
    };
    const results = await Promise.allSettled([
      throttle.suspectCheck(check(100)),
      throttle.suspectCheck(check(50, true)),
      throttle.suspectCheck(check(80)),
    ]);
    assert.equal(most, 1);
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "rejected", "fulfilled"],
      "a failing check does not stop the next",
    );
    assert.deepEqual(rests.slice(0, 2), [400, 200]);
  });

  it("attempts outside the window are forgotten; a success clears the record", () => {
    const { throttle, advance } = setup({ slowAfter: 1, refuseAfter: 100, windowMs: 10_000 });
    throttle.attempt("203.0.113.9");
    throttle.attempt("203.0.113.9");
    assert.ok((throttle.attempt("203.0.113.9") as { delayMs: number }).delayMs > 0);
    advance(10_001);
    assert.deepEqual(throttle.attempt("203.0.113.9"), { kind: "allow", delayMs: 0, suspect: false });
    throttle.attempt("203.0.113.9");
    throttle.succeeded("203.0.113.9");
    assert.deepEqual(throttle.attempt("203.0.113.9"), { kind: "allow", delayMs: 0, suspect: false });
  });

  it("remembers at most maxTracked addresses, dropping the oldest", () => {
    const { throttle } = setup({ refuseAfter: 1, maxTracked: 2 });
    throttle.attempt("10.0.0.1");
    throttle.attempt("10.0.0.2");
    throttle.attempt("10.0.0.3");
    assert.equal(throttle.attempt("10.0.0.2").kind, "refuse");
    assert.equal(throttle.attempt("10.0.0.3").kind, "refuse");
    assert.equal(throttle.attempt("10.0.0.1").kind, "allow", "the oldest was forgotten");
  });
});
