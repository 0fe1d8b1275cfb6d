/**
 * Connections to one milter kept open between messages. A milter connection
 * belongs to one client: its CONNECT and HELO were sent once, at its start
 * (Sendmail and Postfix open one per SMTP session). So an idle connection is
 * kept under its client's key and reused only for the same client, which
 * saves the connect and negotiation for every further message. Idle
 * connections are closed after `idleMs`, the oldest first past `maxIdle`.
 */
import { systemClock, type TimerClock } from "../core/clock.ts";
import type { MilterSession } from "./session.ts";

export interface MilterPoolOptions {
  readonly maxIdle: number;
  readonly idleMs: number;
  readonly clock?: TimerClock;
}

interface Idle {
  readonly key: string;
  readonly session: MilterSession;
  readonly timer: unknown;
}

export class MilterPool {
  readonly #idle: Idle[] = [];
  readonly #clock: TimerClock;
  #closed = false;

  constructor(private readonly options: MilterPoolOptions) {
    this.#clock = options.clock ?? systemClock;
  }

  /** An idle connection for this client that still stands, taken out of the pool; undefined when none. */
  take(key: string): MilterSession | undefined {
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const idle = this.#idle[i]!;
      if (idle.key !== key) continue;
      this.#idle.splice(i, 1);
      this.#clock.clearTimeout(idle.timer);
      if (idle.session.usable) return idle.session;
      void idle.session.close();
    }
    return undefined;
  }

  /** Keep a connection after its message, or close it when it cannot be used again or the pool is closed. */
  give(key: string, session: MilterSession): void {
    if (this.#closed || !session.usable) {
      void session.close();
      return;
    }
    const timer = this.#clock.setTimeout(() => this.#drop(session), this.options.idleMs);
    this.#idle.push({ key, session, timer });
    while (this.#idle.length > this.options.maxIdle) this.#drop(this.#idle[0]!.session);
  }

  get idleCount(): number {
    return this.#idle.length;
  }

  /** Close every idle connection; connections in use are closed when given back. */
  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    for (const entry of idle) this.#clock.clearTimeout(entry.timer);
    await Promise.all(idle.map((entry) => entry.session.close()));
  }

  #drop(session: MilterSession): void {
    const at = this.#idle.findIndex((entry) => entry.session === session);
    if (at < 0) return;
    const [entry] = this.#idle.splice(at, 1);
    this.#clock.clearTimeout(entry!.timer);
    void session.close();
  }
}
