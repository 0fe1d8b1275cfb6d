import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nextRetry, type RetryPolicy } from "../../src/delivery/retry.ts";

const M = 60_000;
const policy: RetryPolicy = { schedule: [5 * M, 10 * M, 20 * M], maxQueueTime: 1000 * M };
const QUEUED = 1_700_000_000_000;
const noJitter = () => 0;

const at = (attempts: number, now: number, random = noJitter, p = policy) => {
  const d = nextRetry(p, attempts, QUEUED, now, random);
  assert.equal(d.kind, "retry", `attempt ${attempts} at ${now} should retry`);
  return (d as { at: number }).at;
};

describe("nextRetry schedule", () => {
  it("the n-th failed attempt waits schedule[n-1]", () => {
    const now = QUEUED + M;
    assert.equal(at(1, now) - now, 5 * M);
    assert.equal(at(2, now) - now, 10 * M);
    assert.equal(at(3, now) - now, 20 * M);
  });

  it("the last delay repeats", () => {
    const now = QUEUED + M;
    for (const attempts of [4, 5, 10, 100]) assert.equal(at(attempts, now) - now, 20 * M, String(attempts));
  });

  it("zero attempts so far uses the first delay", () => {
    const now = QUEUED;
    assert.equal(at(0, now) - now, 5 * M);
  });

  it("a one-step schedule repeats that step", () => {
    const p = { schedule: [7 * M], maxQueueTime: 1000 * M };
    for (const attempts of [1, 2, 9]) assert.equal(at(attempts, QUEUED, noJitter, p) - QUEUED, 7 * M);
  });

  it("counts from now, not from the queue time", () => {
    const now = QUEUED + 100 * M;
    assert.equal(at(1, now), now + 5 * M);
  });
});

describe("nextRetry jitter", () => {
  it("adds between 0 and 10% of the delay, driven by the injected random", () => {
    const now = QUEUED + M;
    assert.equal(at(1, now, () => 0), now + 5 * M);
    assert.equal(at(1, now, () => 0.5), now + Math.round(5 * M * 1.05));
    assert.equal(at(1, now, () => 0.999999), now + Math.round(5 * M * 1.0999999));
    for (let i = 0; i <= 100; i++) {
      const r = i / 101;
      const wait = at(2, now, () => r) - now;
      assert.ok(wait >= 10 * M && wait <= 11 * M, `random ${r}: waited ${wait}`);
    }
  });

  it("uses the random function it is given", () => {
    let calls = 0;
    at(1, QUEUED, () => {
      calls++;
      return 0.3;
    });
    assert.ok(calls >= 1);
  });
});

describe("nextRetry expiry", () => {
  const deadline = QUEUED + policy.maxQueueTime;

  it("expires at the deadline and after it", () => {
    assert.deepEqual(nextRetry(policy, 3, QUEUED, deadline, noJitter), { kind: "expire" });
    assert.deepEqual(nextRetry(policy, 3, QUEUED, deadline + 1, noJitter), { kind: "expire" });
    assert.deepEqual(nextRetry(policy, 3, QUEUED, deadline + 10_000 * M, () => 0.9), { kind: "expire" });
  });

  it("retries one millisecond before the deadline, capped at the deadline", () => {
    assert.equal(at(3, deadline - 1), deadline);
  });

  it("the last retry happens exactly at the deadline instead of being skipped", () => {
    const now = deadline - 5 * M; // 20m delay would land 15m after the deadline
    assert.equal(at(3, now), deadline);
    assert.equal(at(3, now, () => 0.99), deadline, "jitter cannot push it past the deadline either");
    // And a retry that fits is not moved.
    assert.equal(at(1, deadline - 6 * M), deadline - M);
  });

  it("a policy whose delays exceed the queue time still gets one retry at the deadline, then expires", () => {
    const p = { schedule: [60 * M], maxQueueTime: 30 * M };
    const first = nextRetry(p, 1, QUEUED, QUEUED + M, noJitter);
    assert.deepEqual(first, { kind: "retry", at: QUEUED + 30 * M });
    assert.deepEqual(nextRetry(p, 2, QUEUED, QUEUED + 30 * M, noJitter), { kind: "expire" });
  });
});
