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

/**
 * What to do with an AUTH attempt, after waiting delayMs before answering.
 * An allowed attempt from an address with failures in the window is a
 * suspect: its password is checked through suspectCheck().
 */
export type AuthGate = { readonly kind: "allow"; readonly delayMs: number; readonly suspect: boolean } | {
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
  /** The suspects' checks, in turn. */
  private suspects: Promise<unknown> = Promise.resolve();
  private restMs = 0;

  constructor(
    private readonly clock: Clock,
    private readonly options: AuthThrottleOptions = DEFAULT_AUTH_THROTTLE,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((ok) => setTimeout(ok, ms)),
  ) {}

  private rest(): Promise<void> {
    return this.restMs > 0 ? this.sleep(this.restMs) : Promise.resolve();
  }

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
      suspect: record.failures > 1,
    };
  }

  /**
   * Check a suspect's password: one at a time, each followed by a rest
   * four times as long as it took. A scrypt costs about 100 ms of a core and
   * 32 MB; guessing from many addresses at once, each within its limit,
   * then takes at most a fifth of one core from the mail, while a first
   * attempt (every honest login but a typo's retry) is checked at once.
   */
  suspectCheck<T>(check: () => Promise<T>): Promise<T> {
    const turn = this.suspects.then(async () => {
      const started = this.clock.now();
      try {
        return await check();
      } finally {
        this.restMs = 4 * (this.clock.now() - started);
      }
    });
    this.suspects = turn.then(() => this.rest(), () => this.rest());
    return turn;
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
