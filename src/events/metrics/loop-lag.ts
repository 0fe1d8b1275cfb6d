import type { TimerClock } from "../../core/clock.ts";

/** How often the event loop is sampled. */
const SAMPLE_EVERY_MS = 500;

/**
 * Event-loop lag, measured the way every runtime allows: a timer asked for
 * in SAMPLE_EVERY_MS fires late by as long as the loop was busy (with
 * callbacks, timers, garbage collection) when it was due.
 */
export class LoopLagSampler {
  #timer: unknown;
  #last = 0;

  constructor(
    private readonly clock: TimerClock,
    private readonly observe: (lagMs: number) => void,
  ) {}

  start(): void {
    const expected = this.clock.now() + SAMPLE_EVERY_MS;
    this.#timer = this.clock.setTimeout(() => {
      this.#last = Math.max(0, this.clock.now() - expected);
      this.observe(this.#last);
      this.start();
    }, SAMPLE_EVERY_MS);
  }

  /** The lag of the last sample (ms). */
  get last(): number {
    return this.#last;
  }

  stop(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
