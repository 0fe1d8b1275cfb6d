import { categories } from "../../core/category.ts";
import { timeOfId } from "../../core/id.ts";
import { errorText, type Logger } from "../../core/log.ts";
import type { EventRecord } from "../../queue/event-log.ts";
import { OTHER_PROVIDER, type ProviderLabels } from "./provider-labels.ts";
import type { Counter, Histogram } from "./registry.ts";

/** The category label of an event that has none (received, delivered, ...). */
export const NO_CATEGORY = "none";

const knownCategories: ReadonlySet<string> = new Set(categories);

/** Outcomes that end a recipient's time in the queue, when delivery decided them (an attempt is named). */
const FINAL_OUTCOMES: ReadonlySet<string> = new Set(["delivered", "bounced", "expired"]);

export interface EventCountsDeps {
  readonly events: Counter<"type" | "provider" | "category">;
  readonly timeInQueue: Histogram<"outcome">;
  readonly providers: ProviderLabels;
  readonly log: Logger;
}

/** The domain of an event's recipient address, lower case; undefined for events about no recipient. */
function domainOf(event: EventRecord): string | undefined {
  const at = event.recipient?.lastIndexOf("@") ?? -1;
  return at < 0 ? undefined : event.recipient!.slice(at + 1).toLowerCase();
}

/**
 * The event log counted: every event the feed hands on, by type, provider
 * and category, and how long each recipient delivery finished with had been
 * queued. Counted from the log itself, the counters agree with it by
 * construction. Pages are counted in order, each once its domains' providers
 * are known; the feed is never held up.
 */
export class EventCounts {
  #counted: Promise<void> = Promise.resolve();

  constructor(private readonly deps: EventCountsDeps) {}

  /** The feed's subscriber. */
  readonly take = (page: readonly EventRecord[]): void => {
    this.#counted = this.#counted.then(() => this.count(page)).catch((error) =>
      this.deps.log("error", "counting events for metrics failed", { error: errorText(error) })
    );
  };

  /** Resolves once every page taken so far is counted. */
  settled(): Promise<void> {
    return this.#counted;
  }

  private async count(page: readonly EventRecord[]): Promise<void> {
    const providers = await this.deps.providers.of(page.flatMap((e) => domainOf(e) ?? []));
    for (const event of page) {
      const domain = domainOf(event);
      const provider = domain === undefined
        ? (typeof event.data.provider === "string" ? event.data.provider : OTHER_PROVIDER)
        : providers.get(domain) ?? OTHER_PROVIDER;
      const category = typeof event.data.category === "string"
        ? (knownCategories.has(event.data.category) ? event.data.category : "other")
        : NO_CATEGORY;
      this.deps.events.inc({ type: event.type, provider, category });
      if (FINAL_OUTCOMES.has(event.type) && event.messageId !== null && event.data.attempt !== undefined) {
        const seconds = Math.max(0, event.at - timeOfId(event.messageId)) / 1000;
        this.deps.timeInQueue.observe({ outcome: event.type }, seconds);
      }
    }
  }
}
