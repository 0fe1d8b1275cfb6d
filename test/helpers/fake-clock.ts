/**
 * Time that moves only when a test moves it, for unit tests of code that
 * reads the time or waits (a TimerClock):
 *
 *   const clock = new FakeClock();
 *   await clock.timerSet(2000);   // the code under test waits on a 2 s timer now
 *   await clock.advance(2000);    // ... which fires, and what it started settles
 */
import { setImmediate } from "node:timers/promises";
import type { TimerClock } from "../../src/core/clock.ts";
import { waitUntil } from "./wait-until.ts";

/** 2023-11-14T22:13:20Z, a round number of milliseconds. */
const START = 1_700_000_000_000;

interface Timer {
  readonly id: number;
  /** Due at this time; a timer set for the same time as another fires after it. */
  at: number;
  readonly ms: number;
  readonly fire: () => void;
}

export class FakeClock implements TimerClock {
  #now: number;
  #lastId = 0;
  readonly #timers = new Map<number, Timer>();

  constructor(start = START) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fire: () => void, ms: number): unknown {
    const id = ++this.#lastId;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), ms, fire });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** The delays the pending timers were set with, in the order they fall due. */
  get pending(): number[] {
    return this.#due().map((t) => t.ms);
  }

  /**
   * Move the time `ms` forward. Each timer that falls due on the way fires at
   * its due time, in due order, and what it started settles (see settle())
   * before the next one fires; a timer set on the way fires too if it is due.
   */
  async advance(ms: number): Promise<void> {
    const to = this.#now + ms;
    for (let next = this.#due()[0]; next && next.at <= to; next = this.#due()[0]) {
      this.#timers.delete(next.id);
      this.#now = next.at;
      next.fire();
      await settle();
    }
    this.#now = to;
  }

  /**
   * Set the time of day, forward or back, as NTP steps a wall clock: no
   * timer fires, and each stays due as long after now as it was.
   */
  set(time: number): void {
    for (const timer of this.#timers.values()) timer.at += time - this.#now;
    this.#now = time;
  }

  /** Resolves once a timer of `ms` is pending: the code under test waits on it (work on other threads may come first). */
  async timerSet(ms: number): Promise<void> {
    await waitUntil(() => this.pending, (delays) => delays.includes(ms), {
      what: `a timer of ${ms} ms`,
      timeout: 10_000,
      every: 1,
    });
  }

  #due(): Timer[] {
    return [...this.#timers.values()].sort((a, b) => a.at - b.at || a.id - b.id);
  }
}

/** Let pending promise callbacks, and I/O callbacks already due, run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await setImmediate();
}
