import { Webhook } from "standardwebhooks";
import type { TimerClock } from "../core/clock.ts";
import { errorText, type Logger } from "../core/log.ts";
import type { EventRecord } from "../queue/event-log.ts";
import type { RecentEvents } from "./feed.ts";
import type { DeadLetter, WebhookRow, WebhookStore } from "../queue/webhooks.ts";
import { eventJson } from "./event-json.ts";
import { retriesOver, retryDelay, type WebhookBackoff } from "./webhook-backoff.ts";
import type { PostWebhook } from "./webhook-post.ts";

/** Events per POST. */
export const WEBHOOK_BATCH_SIZE = 100;
/** How often the event log is looked at for what endpoints have not taken yet. */
const POLL_MS = 500;

export interface WebhookDispatcherOptions {
  readonly store: Pick<
    WebhookStore,
    | "list"
    | "get"
    | "lastEventId"
    | "eventsFor"
    | "replaying"
    | "withReplays"
    | "advance"
    | "replayed"
    | "failed"
    | "deadLetter"
    | "replayDied"
  >;
  readonly post: PostWebhook;
  /**
   * The newest events as the event feed read them: while an endpoint keeps
   * up, its batches come from there rather than from the database a second
   * time. Without it (or for an endpoint that fell behind) the store is read.
   */
  readonly recent?: RecentEvents;
  readonly clock: TimerClock;
  readonly log: Logger;
  /** RELAY_WEBHOOK_TIMEOUT: one delivery's deadline. */
  readonly timeoutMs: number;
  readonly backoff: WebhookBackoff;
  readonly batchSize?: number;
  readonly pollMs?: number;
  /** Jitter of the backoff; default Math.random. */
  readonly random?: () => number;
  /**
   * RELAY_NODE_ID in a fleet: every node sends its own events to the same
   * endpoints, and event ids are each node's, so the node is named in each
   * event and in the webhook-id. Undefined for a node alone.
   */
  readonly node?: string;
}

/** What an attempt came to: `row`, the endpoint's row as a live batch's cursor write left it. */
interface Delivered {
  readonly taken: boolean;
  readonly row?: WebhookRow;
}
const NOT_TAKEN: Delivered = { taken: false };

/** The batch at an endpoint's head: its next events in log order, or dead letters a replay asked for. */
type Head =
  | { readonly kind: "live"; readonly end: number; readonly events: readonly EventRecord[] }
  | { readonly kind: "replay"; readonly letters: readonly DeadLetter[] };

/**
 * Sends the event log to the webhook endpoints: each endpoint tails the log
 * from its durable cursor (src/queue/webhooks.ts) in a loop of its own, one
 * batch in flight at a time, so its events arrive in log order (and so in
 * order per message), and a slow or dead endpoint holds up only itself. The
 * mail flow never waits for any of it: it writes its events as it always
 * does, and this reads them afterwards.
 *
 * A batch is retried whole, with the same webhook-id, until the endpoint
 * answers 2xx; only then does the cursor move past it. A crash between the
 * answer and the cursor's write sends the batch again with the same id:
 * at least once, and receivers can tell (Standard Webhooks 3.1).
 */
export class WebhookDispatcher {
  readonly #running = new Map<string, { readonly abort: AbortController; readonly done: Promise<void> }>();
  #timer: unknown;
  #tick: Promise<void> | undefined;
  #stopped = false;

  constructor(private readonly options: WebhookDispatcherOptions) {}

  start(): void {
    this.#schedule(0);
  }

  /** Look now rather than at the next poll: an endpoint was added, or a replay asked for. */
  wake(): void {
    if (this.#stopped || this.#tick) return;
    this.options.clock.clearTimeout(this.#timer);
    this.#schedule(0);
  }

  /** Stop the endpoint's delivery in flight, if any (it was deleted). */
  cancel(id: string): void {
    this.#running.get(id)?.abort.abort();
  }

  /**
   * Resolves once the look for work in progress, and every endpoint's
   * deliveries it started, have ended: what a fake clock's test waits on
   * before it moves the time again.
   */
  async settled(): Promise<void> {
    await this.#tick;
    await Promise.all([...this.#running.values()].map((r) => r.done));
  }

  /** No new deliveries; those in flight are cancelled (they are sent again after a restart). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.options.clock.clearTimeout(this.#timer);
    await this.#tick;
    for (const { abort } of this.#running.values()) abort.abort();
    await Promise.all([...this.#running.values()].map((r) => r.done));
  }

  #schedule(ms: number): void {
    this.#timer = this.options.clock.setTimeout(() => {
      this.#tick = this.#startDue()
        .catch((error) => this.options.log("error", "looking for webhook work failed", { error: errorText(error) }))
        .finally(() => {
          this.#tick = undefined;
          if (!this.#stopped) this.#schedule(this.options.pollMs ?? POLL_MS);
        });
    }, ms);
  }

  /** Start the loop of every endpoint that has something to send and is not waiting for a retry. */
  async #startDue(): Promise<void> {
    const { store, clock } = this.options;
    const endpoints = await store.list();
    // An endpoint deleted, through this node or another of the fleet, is sent nothing more.
    const listed = new Set(endpoints.map((w) => w.id));
    for (const [id, { abort }] of this.#running) if (!listed.has(id)) abort.abort();
    if (endpoints.length === 0) return;
    const [last, replays] = await Promise.all([this.#lastEventId(), store.withReplays()]);
    const now = clock.now();
    for (const webhook of endpoints) {
      if (this.#stopped || this.#running.has(webhook.id)) continue;
      if (webhook.nextAttemptAt !== null && webhook.nextAttemptAt > now) continue;
      const work = webhook.cursor < last || webhook.batchEnd !== null || replays.has(webhook.id);
      if (!work) continue;
      const abort = new AbortController();
      const done = this.#run(webhook.id, replays.has(webhook.id), abort.signal)
        .catch((error) =>
          this.options.log("error", "webhook delivery failed unexpectedly", {
            webhook: webhook.id,
            error: errorText(error),
          })
        )
        .finally(() => this.#running.delete(webhook.id));
      this.#running.set(webhook.id, { abort, done });
    }
  }

  /**
   * Send the endpoint's batches one after another until it has taken
   * everything, fails, or is stopped. Its row is read afresh when the loop
   * starts (the list the loop was started from may predate a loop of the
   * same endpoint that ended meanwhile, and a stale cursor would send again
   * what was taken); after a batch the row is the one the cursor's guarded
   * write returned, or read again when that write found it moved on.
   * `replays`: whether it had dead letters to replay when the loop began
   * (a replay asked for later wakes the next poll).
   */
  async #run(id: string, replays: boolean, signal: AbortSignal): Promise<void> {
    const { store, clock } = this.options;
    let webhook = await store.get(id);
    while (!signal.aborted) {
      if (webhook === undefined) return; // deleted
      if (webhook.nextAttemptAt !== null && webhook.nextAttemptAt > clock.now()) return;
      const head = await this.#head(webhook, await this.#lastEventId(), replays);
      if (head === undefined) return;
      if (head.kind === "live" && head.events.length === 0) {
        await store.advance(webhook, head.end, false); // nothing it wants up to there
        return;
      }
      const delivered = await this.#deliver(webhook, head, signal);
      if (!delivered.taken) return; // failed: the next poll after its retry time
      // A short new batch took all there was: what comes meanwhile goes together at the next poll, rather than
      // a batch (and a cursor write on the mail's database) for every few events while mail flows. A retried
      // batch kept its old end: what came after it is there already, and goes now.
      const tookAll = head.kind === "live" && webhook.batchEnd === null && head.events.length < this.#batchSize;
      if (tookAll) return;
      webhook = delivered.row ?? await store.get(id);
    }
  }

  /** How far the log goes: as far as the feed has read it, when there is one. */
  #lastEventId(): Promise<number> {
    const { recent, store } = this.options;
    return recent ? Promise.resolve(recent.newest) : store.lastEventId();
  }

  /** Up to a batch of the events the endpoint wants in (cursor, end], held in memory or read. */
  async #eventsUpTo(webhook: WebhookRow, end: number): Promise<readonly EventRecord[]> {
    const held = this.options.recent?.between(webhook.cursor, end);
    if (held === undefined) return await this.options.store.eventsFor(webhook, end, this.#batchSize);
    const types = webhook.eventTypes;
    const wanted = types.includes("*") ? held : held.filter((e) => types.includes(e.type));
    return wanted.slice(0, this.#batchSize);
  }

  get #batchSize(): number {
    return this.options.batchSize ?? WEBHOOK_BATCH_SIZE;
  }

  async #head(webhook: WebhookRow, last: number, replays: boolean): Promise<Head | undefined> {
    const { store } = this.options;
    const size = this.#batchSize;
    if (webhook.batchEnd === null) {
      const letters = replays ? await store.replaying(webhook.id, size) : [];
      if (letters.length > 0) return { kind: "replay", letters };
      if (webhook.cursor >= last) return undefined;
    }
    // A batch retried keeps its end, so it is the same batch with the same webhook-id.
    const end = webhook.batchEnd ?? last;
    const events = await this.#eventsUpTo(webhook, end);
    const full = webhook.batchEnd === null && events.length === size;
    return { kind: "live", end: full ? events.at(-1)!.id : end, events };
  }

  /**
   * One attempt at the head batch, its outcome recorded: whether the endpoint
   * took it (or it became dead letters), and for a live batch the row as
   * the cursor's write left it.
   */
  async #deliver(webhook: WebhookRow, head: Head, signal: AbortSignal): Promise<Delivered> {
    const { store, clock, log, backoff } = this.options;
    const { node } = this.options;
    const letters = head.kind === "live"
      ? head.events.map((e) => ({
        eventId: e.id,
        event: (node === undefined ? eventJson(e) : { ...eventJson(e), node }) as Record<string, unknown>,
      }))
      : head.letters;
    const ids = letters.map((l) => l.eventId);
    // Unique per batch (Standard Webhooks): in a fleet the same ids name other events on other nodes.
    const messageId = node === undefined ? `evt_${ids[0]}_${ids.at(-1)}` : `evt_${node}_${ids[0]}_${ids.at(-1)}`;
    // Encoded once: the same octets are signed and sent.
    const body = new TextEncoder().encode(
      JSON.stringify({ type: "relay.events", data: { events: letters.map((l) => l.event) } }),
    );
    const sentAt = clock.now();
    const result = await this.options.post({
      url: new URL(webhook.url),
      body,
      headers: {
        "webhook-id": messageId,
        "webhook-timestamp": String(Math.floor(sentAt / 1000)),
        "webhook-signature": new Webhook(webhook.secret).sign(messageId, new Date(sentAt), body),
      },
      timeoutMs: this.options.timeoutMs,
      signal,
    });
    if (signal.aborted) return NOT_TAKEN;
    if (result.ok) {
      if (head.kind === "live") return { taken: true, row: await store.advance(webhook, head.end, true) };
      await store.replayed(webhook.id, ids);
      return { taken: true };
    }
    // The failure state belongs to the head it was recorded for: a live batch has its end, a replay none.
    const continuing = head.kind === "live" ? webhook.batchEnd !== null : webhook.attempts > 0;
    const attempts = continuing ? webhook.attempts + 1 : 1;
    const firstFailureAt = continuing ? webhook.firstFailureAt ?? sentAt : sentAt;
    const now = clock.now();
    const error = result.reason;
    const context = { webhook: webhook.id, url: webhook.url, webhookId: messageId, attempts, error };
    if (retriesOver(firstFailureAt, now, backoff)) {
      log("error", "webhook batch failed for the whole retry window: its events are dead letters", context);
      if (head.kind === "live") await store.deadLetter(webhook, head.end, letters, error);
      else await store.replayDied(webhook.id, ids, error);
      return { taken: true };
    }
    const nextAttemptAt = now + retryDelay(attempts, backoff, this.options.random ?? Math.random);
    log("warn", "webhook delivery failed; retrying", { ...context, next: new Date(nextAttemptAt).toISOString() });
    await store.failed(webhook, {
      batchEnd: head.kind === "live" ? head.end : undefined,
      attempts,
      firstFailureAt,
      nextAttemptAt,
      error,
    });
    return NOT_TAKEN;
  }
}
