import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startPeriodic, type Timers } from "../../src/app/periodic.ts";
import { createLogger } from "../../src/core/log.ts";

/** Timers that fire only when the test says so. */
class FakeTimers implements Timers {
  readonly pending = new Map<number, { callback: () => void; ms: number }>();
  private next = 1;

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { callback, ms });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** The delays of the timers waiting. */
  get waiting(): number[] {
    return [...this.pending.values()].map((t) => t.ms);
  }

  /** Fire every timer waiting now. */
  fire(): void {
    const due = [...this.pending.entries()];
    this.pending.clear();
    for (const [, timer] of due) timer.callback();
  }
}

/** A run the test ends by hand. */
function gate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function recordingLog() {
  const lines: { level: string; message: string; job?: string; error?: string }[] = [];
  return { lines, log: createLogger("debug", "json", (line) => lines.push(JSON.parse(line))) };
}

describe("startPeriodic", () => {
  it("runs every everyMs, timed from the end of the last run, so that runs never overlap", async () => {
    const timers = new FakeTimers();
    const { log } = recordingLog();
    const runs: ReturnType<typeof gate>[] = [];
    const job = startPeriodic(
      { name: "testing", everyMs: 1000, run: () => (runs.push(gate()), runs.at(-1)!.promise) },
      log,
      timers,
    );
    assert.deepEqual(timers.waiting, [1000], "the first run waits a period");
    timers.fire();
    assert.equal(runs.length, 1);
    assert.deepEqual(timers.waiting, [], "no timer while a run is in progress: no second run can start");
    runs[0]!.open();
    await settle();
    assert.deepEqual(timers.waiting, [1000], "the next run is a period after this one ended");
    timers.fire();
    assert.equal(runs.length, 2);
    runs[1]!.open();
    await job.stop();
  });

  it("atStart runs at once", async () => {
    const timers = new FakeTimers();
    const job = startPeriodic(
      { name: "testing", everyMs: 1000, atStart: true, run: async () => {} },
      recordingLog().log,
      timers,
    );
    assert.deepEqual(timers.waiting, [0]);
    await job.stop();
  });

  it("logs a failed run, named, at warn with the error, and goes on", async () => {
    const timers = new FakeTimers();
    const { log, lines } = recordingLog();
    let calls = 0;
    const job = startPeriodic(
      {
        name: "purging finished messages",
        everyMs: 500,
        run: async () => {
          calls++;
          throw new Error("database is locked");
        },
      },
      log,
      timers,
    );
    timers.fire();
    await settle();
    assert.equal(calls, 1);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, "warn");
    assert.equal(lines[0]!.message, "purging finished messages failed");
    assert.equal(lines[0]!.job, "purging finished messages");
    assert.match(lines[0]!.error!, /database is locked/);
    assert.deepEqual(timers.waiting, [500], "the next run is scheduled all the same");
    timers.fire();
    await settle();
    assert.equal(calls, 2);
    await job.stop();
  });

  it("stop waits for the run in progress and no run follows", async () => {
    const timers = new FakeTimers();
    const run = gate();
    let calls = 0;
    const job = startPeriodic(
      { name: "testing", everyMs: 1000, run: () => (calls++, run.promise) },
      recordingLog().log,
      timers,
    );
    timers.fire();
    let stopped = false;
    const stopping = job.stop().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false, "the run is still going");
    run.open();
    await stopping;
    assert.deepEqual(timers.waiting, [], "nothing scheduled after a stop");
    assert.equal(calls, 1);
  });

  it("stop before the first run cancels it", async () => {
    const timers = new FakeTimers();
    let calls = 0;
    const job = startPeriodic(
      { name: "testing", everyMs: 1000, run: async () => void calls++ },
      recordingLog().log,
      timers,
    );
    await job.stop();
    assert.deepEqual(timers.waiting, []);
    assert.equal(calls, 0);
  });
});
