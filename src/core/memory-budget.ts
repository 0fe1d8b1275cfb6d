/**
 * Bytes that may be held in memory at once for one purpose (messages being
 * received), shared out by reservation: a reservation is granted whole or
 * waits its turn (first come, first served, so a large one is not starved
 * by small ones), and is given back when its holder is done. Granting whole
 * amounts, never partial ones, is what keeps holders from waiting on each
 * other: whoever holds a reservation can finish.
 */
export interface Reservation {
  /** Bytes held now. */
  readonly bytes: number;
  /** Take `more` bytes at once if they are free (never waits); false when they are not. */
  grow(more: number): boolean;
  /** Give the bytes back; safe to call twice. */
  release(): void;
}

interface Waiter {
  readonly bytes: number;
  readonly grant: (reservation: Reservation | undefined) => void;
}

export class MemoryBudget {
  #used = 0;
  #waiting: Waiter[] = [];

  constructor(readonly capacity: number) {}

  /** Bytes reserved now. */
  get used(): number {
    return this.#used;
  }

  /** A reservation of `bytes` (at most the capacity) now, or undefined when they are not free or others wait. */
  tryReserve(bytes: number): Reservation | undefined {
    const wanted = Math.min(bytes, this.capacity);
    if (this.#waiting.length > 0 || this.#used + wanted > this.capacity) return undefined;
    return this.#grant(wanted);
  }

  /** A reservation of `bytes` (at most the capacity), after the ones asked before it; undefined after `waitMs`. */
  reserve(bytes: number, waitMs: number): Promise<Reservation | undefined> {
    const now = this.tryReserve(bytes);
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        bytes: Math.min(bytes, this.capacity),
        grant: (reservation) => {
          clearTimeout(timer);
          resolve(reservation);
        },
      };
      const timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((w) => w !== waiter);
        resolve(undefined);
        this.#serve(); // a large waiter that gave up may have blocked smaller ones behind it
      }, waitMs);
      this.#waiting.push(waiter);
    });
  }

  #grant(bytes: number): Reservation {
    this.#used += bytes;
    let held = bytes;
    let released = false;
    return {
      get bytes() {
        return held;
      },
      grow: (more) => {
        if (released || this.#waiting.length > 0 || this.#used + more > this.capacity) return false;
        this.#used += more;
        held += more;
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        this.#used -= held;
        this.#serve();
      },
    };
  }

  #serve(): void {
    while (this.#waiting.length > 0 && this.#used + this.#waiting[0]!.bytes <= this.capacity) {
      const next = this.#waiting.shift()!;
      next.grant(this.#grant(next.bytes));
    }
  }
}
