import process from "node:process";
import type { TimerClock } from "../../core/clock.ts";
import type { Logger } from "../../core/log.ts";
import type { EventSubscriber } from "../feed.ts";
import { EventCounts } from "./event-counts.ts";
import { LoopLagSampler } from "./loop-lag.ts";
import { OTHER_PROVIDER, ProviderLabels } from "./provider-labels.ts";
import type { QueueDepth } from "./queue-depth.ts";
import { type GaugeReading, Registry } from "./registry.ts";

/** What an SMTP listener counts of its connections (SmtpServerHandle.connections). */
export interface ListenerCounts {
  readonly open: number;
  readonly admitted: number;
  readonly refused: number;
}

/** One webhook endpoint's deliveries waiting, and those given up on (dead letters). */
export interface WebhookCounts {
  readonly id: string;
  readonly backlog: number;
  readonly deadLetters: number;
}

const seconds = (ms: number) => ms / 1000;

/**
 * Every metric of the node (docs/metrics.md lists them), and the seams that
 * feed them: the event feed's subscriber, delivery's meter, the commit meter
 * of acceptances, the SMTP listeners and webhooks as the composition root
 * hands them over. Label values are bounded: event types, categories and
 * provider names are fixed lists (providers: the shaping rules' and "other"),
 * and the queue shows at most TOP_DOMAINS domains by name.
 */
export class RelayMetrics {
  readonly #registry = new Registry();
  readonly #lag: LoopLagSampler;
  readonly #listeners: { kind: string; counts: () => ListenerCounts }[] = [];
  readonly #outboundOpen = new Map<string, number>();

  constructor(private readonly clock: TimerClock, private readonly log: Logger) {
    const r = this.#registry;
    r.gauge(
      "relay_smtp_connections_open",
      "SMTP connections open now",
      ["listener"],
      () => this.listenerReading("open"),
    );
    r.counterReading(
      "relay_smtp_connections_total",
      "SMTP connections admitted since the process started",
      ["listener"],
      () => this.listenerReading("admitted"),
    );
    r.counterReading(
      "relay_smtp_connections_refused_total",
      "SMTP connections refused over a connection limit (421) since the process started",
      ["listener"],
      () => this.listenerReading("refused"),
    );
    r.gauge(
      "relay_outbound_connections_open",
      "Delivery connections open now, by provider",
      ["provider"],
      () => [...this.#outboundOpen].map(([provider, n]) => [{ provider }, n] as const),
    );
    const memory = () => process.memoryUsage();
    r.gauge("relay_process_resident_memory_bytes", "Resident set size", [], () => [[{}, memory().rss]]);
    r.gauge("relay_process_heap_used_bytes", "JavaScript heap in use", [], () => [[{}, memory().heapUsed]]);
    r.gauge("relay_process_heap_total_bytes", "JavaScript heap reserved", [], () => [[{}, memory().heapTotal]]);
    const lag = r.histogram(
      "relay_event_loop_lag_seconds",
      "How late a timer fired, sampled every 500 ms: how long the event loop was busy when it was due",
      [],
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
    this.#lag = new LoopLagSampler(clock, (ms) => lag.observe({}, seconds(ms)));
  }

  readonly #outbound = this.#registry.counter(
    "relay_outbound_connections_total",
    "Delivery connections opened, or that could not be opened, since the process started, by provider",
    ["provider", "result"],
  );
  readonly #attempts = this.#registry.histogram(
    "relay_attempt_duration_seconds",
    "One delivery transaction (a message to its recipients at one destination), by provider",
    ["provider"],
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  );
  readonly #batchSizes = this.#registry.histogram(
    "relay_group_commit_batch_size",
    "Requests that shared one database commit, by what was committed",
    ["commit"],
    [1, 2, 4, 8, 16, 32, 64, 128, 256],
  );
  readonly #commitTimes = this.#registry.histogram(
    "relay_group_commit_seconds",
    "One group commit: its transaction and fsync, by what was committed",
    ["commit"],
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  );

  /**
   * Count the event log as it grows: the subscriber to give the event feed.
   * `providerOf`: the provider whose MX hosts serve a recipient domain, as
   * delivery routes it (undefined: none the shaping rules know).
   */
  countEvents(providerOf: (domain: string) => Promise<string | undefined>): EventSubscriber {
    const r = this.#registry;
    const counts = new EventCounts({
      events: r.counter(
        "relay_events_total",
        "Events written to the event log since the process started, by type, recipient provider and category",
        ["type", "provider", "category"],
      ),
      timeInQueue: r.histogram(
        "relay_time_in_queue_seconds",
        "From acceptance to the attempt that delivered, bounced or expired the recipient",
        ["outcome"],
        [1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 432000],
      ),
      providers: new ProviderLabels(providerOf, this.clock),
      log: this.log,
    });
    return counts.take;
  }

  /** Report the queue's depth (counted at most every few seconds, src/events/metrics/queue-depth.ts). */
  watchQueue(depth: QueueDepth): void {
    this.#registry.gauge(
      "relay_queue_recipients",
      "Recipients waiting in the queue (in flight included), by state",
      ["state"],
      () => depth.total(),
    );
    this.#registry.gauge(
      "relay_queue_depth",
      "Recipients waiting in the queue by state and recipient domain: the 20 domains with the most, the rest as other",
      ["state", "domain"],
      () => depth.byDomain(),
    );
  }

  /** A group commit of `commit` ("enqueue", "outcomes", "postponements"): its size and time (ms). */
  readonly committed = (commit: string, batchSize: number, ms: number): void => {
    this.#batchSizes.observe({ commit }, batchSize);
    this.#commitTimes.observe({ commit }, seconds(ms));
  };

  /** Delivery's meter (src/delivery/meter.ts DeliveryMeter). */
  readonly delivery = {
    at: (provider: string | undefined) => {
      const label = provider ?? OTHER_PROVIDER;
      const open = (by: number) => this.#outboundOpen.set(label, (this.#outboundOpen.get(label) ?? 0) + by);
      return {
        connectionOpened: () => {
          this.#outbound.inc({ provider: label, result: "opened" });
          open(1);
        },
        connectionFailed: () => this.#outbound.inc({ provider: label, result: "failed" }),
        connectionClosed: () => open(-1),
        attempted: (ms: number) => this.#attempts.observe({ provider: label }, seconds(ms)),
      };
    },
    committed: (kind: "outcomes" | "postponements", batchSize: number, ms: number) =>
      this.committed(kind, batchSize, ms),
  };

  /** Count an SMTP listener's connections (`kind`: smtp or smtps). */
  watchListener(kind: string, counts: () => ListenerCounts): void {
    this.#listeners.push({ kind, counts });
  }

  /** Report each webhook endpoint's backlog and dead letters, read at each scrape. */
  watchWebhooks(read: () => Promise<readonly WebhookCounts[]>): void {
    this.#registry.gauge(
      "relay_webhook_backlog",
      "Events a webhook endpoint wants and has not taken yet",
      ["webhook"],
      async () => (await read()).map((w) => [{ webhook: w.id }, w.backlog]),
    );
    this.#registry.gauge(
      "relay_webhook_dead_letters",
      "Events a webhook endpoint did not take within the retry window, kept to be replayed",
      ["webhook"],
      async () => (await read()).map((w) => [{ webhook: w.id }, w.deadLetters]),
    );
  }

  /** Start sampling the event loop. */
  start(): void {
    this.#lag.start();
  }

  stop(): void {
    this.#lag.stop();
  }

  /** The text of GET /metrics; a metric that cannot be read now is left out and logged. */
  expose(): Promise<string> {
    return this.#registry.expose((name, error) =>
      this.log("warn", "a metric could not be read", { metric: name, error: String(error) })
    );
  }

  private listenerReading(field: keyof ListenerCounts): GaugeReading<"listener"> {
    const byKind = new Map<string, number>();
    for (const { kind, counts } of this.#listeners) byKind.set(kind, (byKind.get(kind) ?? 0) + counts()[field]);
    return [...byKind].map(([listener, n]) => [{ listener }, n] as const);
  }
}
