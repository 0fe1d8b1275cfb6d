/** Time as a dependency, so the scheduler and retries are tested without waiting. */
export interface Clock {
  now(): number;
}

/**
 * A clock that also waits: code that sleeps or times out takes its timers
 * from here, so a test's fake clock moves the time and fires them together.
 */
export interface TimerClock extends Clock {
  /** Run `fire` once, `ms` from now; the handle is for clearTimeout. */
  setTimeout(fire: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: TimerClock = {
  now: () => Date.now(),
  setTimeout: (fire, ms) => setTimeout(fire, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
