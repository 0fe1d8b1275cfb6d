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

export type AuthGate = { readonly kind: "allow"; readonly delayMs: number } | {
  readonly kind: "refuse";
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

  /** What to do before checking a password from `ip`. */
  gate(ip: string): AuthGate {
    const now = this.clock.now();
    const record = this.current(ip, now);
    if (!record) return { kind: "allow", delayMs: 0 };
    if (record.lockedUntil > now) return { kind: "refuse", retryAfterMs: record.lockedUntil - now };
    const excess = record.failures - this.options.slowAfter;
    return {
      kind: "allow",
      delayMs: excess < 0 ? 0 : Math.min(this.options.maxDelayMs, (excess + 1) * this.options.delayStepMs),
    };
  }

  failed(ip: string): void {
    const now = this.clock.now();
    const record = this.current(ip, now) ?? { failures: 0, firstAt: now, lockedUntil: 0 };
    record.failures += 1;
    if (record.failures >= this.options.refuseAfter) record.lockedUntil = now + this.options.lockoutMs;
    this.records.delete(ip);
    this.records.set(ip, record);
    while (this.records.size > this.options.maxTracked) this.records.delete(this.records.keys().next().value!);
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
