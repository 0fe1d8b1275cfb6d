import type { Lane } from "../core/lane.ts";
import type { RateLimit } from "../shaping/rate.ts";

/**
 * Something that decides when the next message (or connection) to a
 * destination may go: a rate, a warmup cap, a throttle from automation.
 */
export interface Gate {
  /** The earliest time the next one may go: `now` when it may go now. */
  nextAt(now: number, lane: Lane): number;
  /** Count one that goes now. */
  take(now: number, lane: Lane): void;
  /** How far apart they go at the steady rate, to foresee when queued work will go; 0: no limit. */
  spacing(lane: Lane): number;
}

const UNIT_MS = { s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds between two events at this rate; 0 for no limit. */
export function spacingOf(rate: RateLimit): number {
  return rate === "unlimited" ? 0 : UNIT_MS[rate.per] / rate.count;
}

/**
 * A rate as evenly spaced events (GCRA with no burst): "100/h" lets one go
 * every 36 s, never 100 at the top of the hour, so a receiver that counts
 * any window of an hour never sees more than 100. Time not used is not
 * saved up: after a quiet spell the next event goes at once, the one after
 * it a full spacing later.
 */
export class Pacer implements Gate {
  /** When the next event may go (GCRA's theoretical arrival time). */
  private earliest = 0;

  constructor(private interval: number) {}

  /** A rule change: the new spacing counts from the last event. */
  setSpacing(interval: number): void {
    this.earliest += interval - this.interval;
    this.interval = interval;
  }

  nextAt(now: number): number {
    return Math.max(now, this.earliest);
  }

  take(now: number): void {
    if (this.interval > 0) this.earliest = Math.max(now, this.earliest) + this.interval;
  }

  spacing(): number {
    return this.interval;
  }
}

/** Every gate must let it go: the latest of their times, the widest of their spacings. */
export function allOf(gates: () => readonly Gate[]): Gate {
  return {
    nextAt: (now, lane) => gates().reduce((at, gate) => Math.max(at, gate.nextAt(now, lane)), now),
    take: (now, lane) => {
      for (const gate of gates()) gate.take(now, lane);
    },
    spacing: (lane) => gates().reduce((widest, gate) => Math.max(widest, gate.spacing(lane)), 0),
  };
}

/** No limit. */
export const OPEN_GATE: Gate = { nextAt: (now) => now, take: () => undefined, spacing: () => 0 };
