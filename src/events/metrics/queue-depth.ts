import type { Clock } from "../../core/clock.ts";
import type { InQueueCount } from "../../queue/records.ts";
import type { GaugeReading } from "./registry.ts";

/** Domains shown by name, at most: those with the most pending recipients; the rest are summed as "other". */
export const TOP_DOMAINS = 20;
/** A count is reused for at least this long... */
const MIN_AGE_MS = 5_000;
/**
 * ...and for this many times as long as it took: counting takes the
 * database's one connection (src/queue/database.ts) for as long as it runs
 * (about 0.5 s for 1,000,000 pending recipients, measured), so a deep queue
 * is counted at most 1% of the time, here every ~50 s.
 */
const AGE_PER_COST = 100;

type Depth = { readonly byDomain: GaugeReading<"state" | "domain">; readonly total: GaugeReading<"state"> };

/**
 * The queue's depth by state and recipient domain, for each scrape. Counting
 * reads an index entry per pending recipient (a million of them take half a
 * second), so a count is kept and reused for MIN_AGE_MS or AGE_PER_COST
 * times as long as it took, whichever is longer; scrapes that come together
 * share one count.
 */
export class QueueDepth {
  #last: { at: number; depth: Depth } | undefined;
  #reuseMs = MIN_AGE_MS;
  #counting: Promise<Depth> | undefined;

  constructor(
    private readonly count: () => Promise<readonly InQueueCount[]>,
    private readonly clock: Clock,
  ) {}

  async byDomain(): Promise<Depth["byDomain"]> {
    return (await this.depth()).byDomain;
  }

  async total(): Promise<Depth["total"]> {
    return (await this.depth()).total;
  }

  /** Recipients in the queue, every state together. */
  async recipients(): Promise<number> {
    let n = 0;
    for (const [, count] of (await this.depth()).total) n += count;
    return n;
  }

  private depth(): Promise<Depth> {
    const now = this.clock.now();
    if (this.#last && now < this.#last.at + this.#reuseMs) return Promise.resolve(this.#last.depth);
    this.#counting ??= this.recount().finally(() => (this.#counting = undefined));
    return this.#counting;
  }

  private async recount(): Promise<Depth> {
    const started = this.clock.now();
    const counts = await this.count();
    const done = this.clock.now();
    this.#reuseMs = Math.max(MIN_AGE_MS, AGE_PER_COST * (done - started));
    const depth = depthOf(counts);
    this.#last = { at: done, depth };
    return depth;
  }
}

const STATES = ["queued", "deferred", "held"] as const;
const inQueue = (c: InQueueCount) => c.queued + c.deferred + c.held;

function depthOf(counts: readonly InQueueCount[]): Depth {
  const ranked = [...counts].sort((a, b) => inQueue(b) - inQueue(a) || a.domain.localeCompare(b.domain));
  const shown = ranked.slice(0, TOP_DOMAINS);
  const rest = ranked.slice(TOP_DOMAINS);
  const sum = (of: readonly InQueueCount[], state: (typeof STATES)[number]) => of.reduce((n, c) => n + c[state], 0);
  const byDomain: [{ state: string; domain: string }, number][] = [];
  for (const c of shown) {
    for (const state of STATES) byDomain.push([{ state, domain: c.domain }, c[state]]);
  }
  if (rest.length > 0) {
    for (const state of STATES) byDomain.push([{ state, domain: "other" }, sum(rest, state)]);
  }
  return { byDomain, total: STATES.map((state) => [{ state }, sum(counts, state)]) };
}
