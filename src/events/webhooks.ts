import { randomBytes } from "node:crypto";
import { newId } from "../core/id.ts";
import type { WebhookBacklog, WebhookRow, WebhookStore } from "../queue/webhooks.ts";
import type { WebhookDispatcher } from "./webhook-dispatcher.ts";
import { checkWebhookUrl } from "./webhook-target.ts";

/** Standard Webhooks secrets: "whsec_" and base64 of 24 to 64 random bytes; 32 here. */
const SECRET_BYTES = 32;

export interface WebhookInput {
  readonly url: string;
  /** Event types (src/queue/schema.ts eventTypes), or "*" for every one. */
  readonly events: readonly string[];
  readonly description?: string;
}

export type Registration = { ok: true; webhook: WebhookRow } | { ok: false; field: "url"; reason: string };

/**
 * Webhook endpoints as the API manages them: registration (the URL checked,
 * the signing secret made), removal, dead letters and their replay, and
 * what each endpoint has left to take (for the API and for metrics).
 */
export class Webhooks {
  constructor(
    private readonly store: Pick<
      WebhookStore,
      "create" | "list" | "get" | "remove" | "deadLetters" | "replay" | "backlogs"
    >,
    private readonly dispatcher: Pick<WebhookDispatcher, "wake" | "cancel">,
    /** RELAY_WEBHOOK_ALLOW_PRIVATE */
    private readonly allowPrivate: boolean,
  ) {}

  async register(input: WebhookInput): Promise<Registration> {
    const checked = checkWebhookUrl(input.url, this.allowPrivate);
    if (!checked.ok) return { ok: false, field: "url", reason: checked.reason };
    const webhook = await this.store.create({
      id: `wh_${newId()}`,
      url: checked.url.href,
      eventTypes: input.events.includes("*") ? ["*"] : [...new Set(input.events)],
      description: input.description,
      secret: `whsec_${randomBytes(SECRET_BYTES).toString("base64")}`,
    });
    this.dispatcher.wake();
    return { ok: true, webhook };
  }

  list(): Promise<WebhookRow[]> {
    return this.store.list();
  }

  get(id: string): Promise<WebhookRow | undefined> {
    return this.store.get(id);
  }

  async remove(id: string): Promise<boolean> {
    const removed = await this.store.remove(id);
    this.dispatcher.cancel(id);
    return removed;
  }

  deadLetters(id: string, after: number, limit: number) {
    return this.store.deadLetters(id, after, limit);
  }

  /** Send dead letters again (all of the endpoint's, or these events'), before its next live events; returns how many. */
  async replay(id: string, eventIds?: readonly number[]): Promise<number> {
    const count = await this.store.replay(id, eventIds);
    if (count > 0) this.dispatcher.wake();
    return count;
  }

  /** Per endpoint: events not delivered yet and dead letters (for /metrics). */
  backlogs(): Promise<WebhookBacklog[]> {
    return this.store.backlogs();
  }
}
