/** What the idle timer needs from its environment; tests give a fake one. */
export interface Timers {
  /** Milliseconds on a clock that never goes back. */
  now(): number;
  setTimeout(fire: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (fire, ms) => setTimeout(fire, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Calls onIdle once `ms` have passed since the last touch. A session is
 * touched on every chunk it reads, so a touch only notes the time: the one
 * timer, when it fires before `ms` of quiet, waits again for the rest (a
 * clearTimeout and a setTimeout per chunk showed in CPU profiles).
 */
export class IdleTimer {
  #last = 0;
  #handle: unknown;
  #armed = false;

  constructor(
    private readonly ms: number,
    private readonly onIdle: () => void,
    private readonly timers: Timers = systemTimers,
  ) {}

  /** Activity now: the quiet time counts from here. */
  touch(): void {
    this.#last = this.timers.now();
    if (!this.#armed) this.#arm(this.ms);
  }

  stop(): void {
    if (this.#armed) this.timers.clearTimeout(this.#handle);
    this.#armed = false;
  }

  #arm(ms: number): void {
    this.#armed = true;
    this.#handle = this.timers.setTimeout(this.#fire, ms);
  }

  #fire = (): void => {
    this.#armed = false;
    const rest = this.#last + this.ms - this.timers.now();
    if (rest > 0) return this.#arm(rest);
    this.onIdle();
  };
}
