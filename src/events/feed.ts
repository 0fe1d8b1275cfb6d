import { errorText, type Logger } from "../core/log.ts";
import type { EventRecord } from "../queue/event-log.ts";

/** Where the feed reads: the event log in id order (`QueueStore`). */
export interface EventSource {
  listEvents(after: number, limit: number): Promise<readonly EventRecord[]>;
  /** The id of the newest event, 0 when there is none. */
  lastEventId(): Promise<number>;
}

/** Told of new events, in log order, a page at a time; it must not throw or block for long. */
export type EventSubscriber = (page: readonly EventRecord[]) => void;

/**
 * The newest stretch of the event log the feed has read, for readers that
 * would otherwise read the same rows again (the webhook dispatcher).
 */
export interface RecentEvents {
  /** The id of the newest event read so far: the log as far as the feed has seen it. */
  readonly newest: number;
  /** Every event with an id in (after, upTo], in log order, when all of them are held; undefined when not. */
  between(after: number, upTo: number): readonly EventRecord[] | undefined;
}

const PAGE = 1000;
/** Events kept for `between`: a few seconds of a busy node's log. */
const KEPT = 20_000;

/**
 * The event log read as it grows, for what the process reports about itself
 * (delivery log lines, metrics). It starts at the newest event when the node
 * starts: what happened before belongs to the last run's logs. Readers that
 * must never miss an event (webhooks) keep their own cursor in the database,
 * and take what they need from the stretch kept here while they keep up.
 * Nothing here touches the mail flow's transactions: the log is read after
 * the fact, so a slow subscriber delays reports, never mail.
 *
 * An event becomes visible only in id order (one writer commits at a time,
 * and a later transaction is given later ids), so the pages read after a
 * cursor hold every event after it: the stretch kept has no holes.
 */
export class EventFeed implements RecentEvents {
  readonly name = "reading new events";
  readonly #subscribers: EventSubscriber[] = [];
  #cursor: number | undefined;
  /** The events kept, in id order: every event with an id in (#keptAfter, #cursor]. */
  #kept: EventRecord[] = [];
  #keptAfter = 0;

  constructor(
    private readonly source: EventSource,
    private readonly log: Logger,
    readonly everyMs = 250,
    private readonly keep = KEPT,
  ) {}

  /**
   * Begin after the newest event now, before anything can write one (the
   * listeners, delivery): without it the first run begins wherever the log
   * is by then, and what was written before it is never handed on.
   */
  async start(): Promise<void> {
    if (this.#cursor === undefined) this.#begin(await this.source.lastEventId());
  }

  subscribe(subscriber: EventSubscriber): void {
    this.#subscribers.push(subscriber);
  }

  get newest(): number {
    return this.#cursor ?? 0;
  }

  between(after: number, upTo: number): readonly EventRecord[] | undefined {
    if (this.#cursor === undefined || after < this.#keptAfter || upTo > this.#cursor) return undefined;
    const from = this.#indexAfter(after);
    return this.#kept.slice(from, this.#indexAfter(upTo, from));
  }

  /** Read what was written since the last run and hand it to every subscriber. */
  async run(): Promise<void> {
    if (this.#cursor === undefined) this.#begin(await this.source.lastEventId());
    for (;;) {
      const page = await this.source.listEvents(this.#cursor!, PAGE);
      if (page.length === 0) return;
      this.#cursor = page[page.length - 1]!.id;
      this.#hold(page);
      for (const subscriber of this.#subscribers) {
        try {
          subscriber(page);
        } catch (error) {
          this.log("error", "an event subscriber failed", { error: errorText(error) });
        }
      }
      if (page.length < PAGE) return;
    }
  }

  #begin(cursor: number): void {
    this.#cursor = cursor;
    this.#keptAfter = cursor;
  }

  #hold(page: readonly EventRecord[]): void {
    this.#kept.push(...page);
    const over = this.#kept.length - this.keep;
    if (over > 0) {
      this.#keptAfter = this.#kept[over - 1]!.id;
      this.#kept = this.#kept.slice(over);
    }
  }

  /** The index of the first kept event with an id above `id` (binary search from `from`). */
  #indexAfter(id: number, from = 0): number {
    let [low, high] = [from, this.#kept.length];
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#kept[middle]!.id <= id) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
