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

const PAGE = 1000;

/**
 * The event log read as it grows, for what the process reports about itself
 * (delivery log lines, metrics). It starts at the newest event when the node
 * starts: what happened before belongs to the last run's logs. Readers that
 * must never miss an event (webhooks) keep their own cursor in the database
 * instead. Nothing here touches the mail flow's transactions: the log is read
 * after the fact, so a slow subscriber delays reports, never mail.
 */
export class EventFeed {
  readonly name = "reading new events";
  readonly #subscribers: EventSubscriber[] = [];
  #cursor: number | undefined;

  constructor(private readonly source: EventSource, private readonly log: Logger, readonly everyMs = 250) {}

  /**
   * Begin after the newest event now, before anything can write one (the
   * listeners, delivery): without it the first run begins wherever the log
   * is by then, and what was written before it is never handed on.
   */
  async start(): Promise<void> {
    this.#cursor ??= await this.source.lastEventId();
  }

  subscribe(subscriber: EventSubscriber): void {
    this.#subscribers.push(subscriber);
  }

  /** Read what was written since the last run and hand it to every subscriber. */
  async run(): Promise<void> {
    this.#cursor ??= await this.source.lastEventId();
    for (;;) {
      const page = await this.source.listEvents(this.#cursor, PAGE);
      if (page.length === 0) return;
      this.#cursor = page[page.length - 1]!.id;
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
}
