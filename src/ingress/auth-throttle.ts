import type { Clock } from "../core/clock.ts";

export interface AuthThrottleOptions {
  /** Failures in the window before answers are slowed down. */
  readonly slowAfter: number;
  /** Failures in the window before the address is refused outright. */
  readonly refuseAfter: number;
  readonly windowMs: number;
  /** How long a refused address stays refused. */
  readonly lockoutMs: number;
  /** Added delay per failure beyond slowAfter, capped at maxDelayMs. */
  readonly delayStepMs: number;
  readonly maxDelayMs: number;
  /** Addresses remembered at most; the oldest are forgotten first. */
  readonly maxTracked: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = {
  slowAfter: 3,
  refuseAfter: 10,
  windowMs: 15 * 60_000,
  lockoutMs: 15 * 60_000,
  delayStepMs: 1000,
  maxDelayMs: 5000,
  maxTracked: 10_000,
};

interface Record {
  failures: number;
  firstAt: number;
  lockedUntil: number;
}

/** What to do with an AUTH attempt, after waiting delayMs before answering. */
export type AuthGate = { readonly kind: "allow"; readonly delayMs: number } | {
  readonly kind: "refuse";
  readonly delayMs: number;
  readonly retryAfterMs: number;
};

/**
 * Slows down and then refuses password guessing from one client address.
 * Memory is bounded: a Map in insertion order serves as the LRU.
 */
export class AuthThrottle {
  private readonly records = new Map<string, Record>();

  constructor(
    private readonly clock: Clock,
    private readonly options: AuthThrottleOptions = DEFAULT_AUTH_THROTTLE,
  ) {}

  /**
   * Before checking a password from `ip`: refused, or allowed after a delay.
   * An allowed attempt counts as a failure at once, until succeeded() says
   * otherwise: guesses sent at the same moment over many connections from
   * one address are all counted before any of them is answered, so no more
   * than refuseAfter passwords are ever checked for it in a window. A
   * refusal waits as long as the slowest allowed attempt: a locked-out
   * guesser gets its answers no faster than a slowed one.
   */
  attempt(ip: string): AuthGate {
    const now = this.clock.now();
    const record = this.current(ip, now) ?? { failures: 0, firstAt: now, lockedUntil: 0 };
    if (record.lockedUntil > now) {
      return { kind: "refuse", delayMs: this.options.maxDelayMs, retryAfterMs: record.lockedUntil - now };
    }
    const excess = record.failures - this.options.slowAfter;
    record.failures += 1;
    if (record.failures >= this.options.refuseAfter) record.lockedUntil = now + this.options.lockoutMs;
    this.records.delete(ip);
    this.records.set(ip, record);
    while (this.records.size > this.options.maxTracked) this.records.delete(this.records.keys().next().value!);
    return {
      kind: "allow",
      delayMs: excess < 0 ? 0 : Math.min(this.options.maxDelayMs, (excess + 1) * this.options.delayStepMs),
    };
  }

  succeeded(ip: string): void {
    this.records.delete(ip);
  }

  private current(ip: string, now: number): Record | undefined {
    const record = this.records.get(ip);
    if (!record) return undefined;
    if (record.lockedUntil <= now && now - record.firstAt > this.options.windowMs) {
      this.records.delete(ip);
      return undefined;
    }
    return record;
  }
}
