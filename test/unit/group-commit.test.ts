import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { GroupCommit } from "../../src/queue/group-commit.ts";

/** A commit function whose calls are recorded and settle only when the test says so. */
function controlledCommit<T>() {
  const calls: { items: T[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const waiters: (() => void)[] = [];
  const commit = (items: T[]) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ items: [...items], resolve, reject });
      waiters.splice(0).forEach((w) => w());
    });
  /** Resolves when the n-th call (1-based) has been made. */
  const called = async (n: number) => {
    while (calls.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { calls, commit, called };
}

/** Track which promises have settled, without awaiting them. */
function track(promises: Promise<void>[]) {
  const state = promises.map(() => "pending" as "pending" | "resolved" | "rejected");
  const errors: unknown[] = promises.map(() => undefined);
  promises.forEach((p, i) =>
    p.then(
      () => (state[i] = "resolved"),
      (e) => {
        state[i] = "rejected";
        errors[i] = e;
      },
    )
  );
  return { state, errors };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

describe("GroupCommit", () => {
  it("hands the next group to the database before the finished group's callers run", async () => {
    const { calls, commit, called } = controlledCommit<number>();
    const gc = new GroupCommit(commit);
    const first = gc.submit(1);
    await called(1);
    void gc.submit(2); // arrives while the first commit is under way
    let callsWhenFirstResolved = 0;
    const seen = first.then(() => (callsWhenFirstResolved = calls.length));
    calls[0]!.resolve();
    await seen;
    assert.equal(callsWhenFirstResolved, 2, "the second commit had started");
    assert.deepEqual(calls[1]!.items, [2]);
  });

  it("submits made together share one commit call", async () => {
    let calls = 0;
    const seen: number[][] = [];
    const gc = new GroupCommit<number>(async (items) => {
      calls++;
      seen.push(items);
    });
    await Promise.all([1, 2, 3, 4, 5].map((n) => gc.submit(n)));
    assert.equal(calls, 1);
    assert.deepEqual(seen, [[1, 2, 3, 4, 5]]);
  });

  it("each submit resolves only after the commit that carries it; one commit at a time", async () => {
    const c = controlledCommit<string>();
    const gc = new GroupCommit<string>(c.commit);
    const first = track([gc.submit("a"), gc.submit("b")]);
    await c.called(1);
    // Submitted while the first commit is in flight: waits for the next one.
    const second = track([gc.submit("c")]);
    for (let i = 0; i < 5; i++) await turn();
    assert.deepEqual(first.state, ["pending", "pending"], "nothing resolves before its commit");
    assert.deepEqual(second.state, ["pending"]);
    assert.equal(c.calls.length, 1, "the second batch waits for the first commit to finish");

    c.calls[0]!.resolve();
    await c.called(2);
    await turn();
    assert.deepEqual(first.state, ["resolved", "resolved"]);
    assert.deepEqual(second.state, ["pending"], "c is not resolved by the commit of a and b");
    assert.deepEqual(c.calls[1]!.items, ["c"]);

    c.calls[1]!.resolve();
    for (let i = 0; i < 3; i++) await turn();
    assert.deepEqual(second.state, ["resolved"]);
  });

  it("submits arriving during a commit are batched together into the next one", async () => {
    const c = controlledCommit<number>();
    const gc = new GroupCommit<number>(c.commit);
    const all = [gc.submit(1)];
    await c.called(1);
    all.push(gc.submit(2), gc.submit(3), gc.submit(4));
    c.calls[0]!.resolve();
    await c.called(2);
    c.calls[1]!.resolve();
    await Promise.all(all);
    assert.deepEqual(c.calls.map((x) => x.items), [[1], [2, 3, 4]]);
  });

  it("a failing commit rejects exactly its batch, with its error", async () => {
    const c = controlledCommit<number>();
    const gc = new GroupCommit<number>(c.commit);
    const batch1 = track([gc.submit(1), gc.submit(2)]);
    await c.called(1);
    const batch2 = track([gc.submit(3)]);
    const boom = new Error("disk full");
    c.calls[0]!.reject(boom);
    await c.called(2);
    await turn();
    assert.deepEqual(batch1.state, ["rejected", "rejected"]);
    assert.equal(batch1.errors[0], boom);
    assert.equal(batch1.errors[1], boom);
    assert.deepEqual(batch2.state, ["pending"]);
    c.calls[1]!.resolve();
    for (let i = 0; i < 3; i++) await turn();
    assert.deepEqual(batch2.state, ["resolved"], "the next batch still commits");
  });

  it("keeps working after a failure", async () => {
    let fail = true;
    const gc = new GroupCommit<number>(async () => {
      if (fail) throw new Error("once");
    });
    await assert.rejects(gc.submit(1), /once/);
    fail = false;
    await gc.submit(2);
    await Promise.all([gc.submit(3), gc.submit(4)]);
  });

  it("maxBatch splits a burst into commits of at most that size, in order", async () => {
    const seen: number[][] = [];
    const gc = new GroupCommit<number>(async (items) => {
      seen.push(items);
    }, 3);
    await Promise.all([1, 2, 3, 4, 5, 6, 7].map((n) => gc.submit(n)));
    assert.deepEqual(seen, [[1, 2, 3], [4, 5, 6], [7]]);
  });

  it("a failure in one split rejects only that split", async () => {
    let call = 0;
    const gc = new GroupCommit<number>(async () => {
      if (++call === 2) throw new Error("second batch");
    }, 2);
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => gc.submit(n)));
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled", "rejected", "rejected", "fulfilled"]);
  });

  it("separate bursts get separate commits", async () => {
    let calls = 0;
    const gc = new GroupCommit<number>(async () => {
      calls++;
    });
    await gc.submit(1);
    await gc.submit(2);
    assert.equal(calls, 2);
  });

  it("tells its meter each commit's size and time, a failed one too", async () => {
    const { calls, commit, called } = controlledCommit<number>();
    const told: { size: number; ms: number }[] = [];
    const gc = new GroupCommit(commit, 256, (size, ms) => told.push({ size, ms }));
    const first = [gc.submit(1), gc.submit(2), gc.submit(3)];
    await called(1);
    await new Promise((r) => setTimeout(r, 20)); // the commit takes a while
    calls[0]!.resolve();
    await Promise.all(first);
    const second = gc.submit(4);
    await called(2);
    calls[1]!.reject(new Error("disk full"));
    await assert.rejects(second, /disk full/);
    assert.deepEqual(told.map((t) => t.size), [3, 1]);
    assert.ok(told[0]!.ms > 0, "the time from the commit to its end");
  });
});
