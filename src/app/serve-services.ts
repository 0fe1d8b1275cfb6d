import type { Config } from "../config/load.ts";
import { batchLogger, errorText, type Logger } from "../core/log.ts";
import type { Resolver } from "../dns/resolver.ts";
import { resolveMailHosts } from "../dns/mx.ts";
import { createMtaSts } from "../delivery/mta-sts/index.ts";
import { createPlanner } from "../delivery/planner.ts";
import { chosenWithoutMx, createRouter } from "../delivery/route.ts";
import { SandboxTransport } from "../delivery/sandbox.ts";
import { Scheduler } from "../delivery/scheduler.ts";
import { TlsFallbackMemory } from "../delivery/tls-memory.ts";
import { TlsReporter } from "../delivery/tls-report/reporter.ts";
import { TlsTally } from "../delivery/tls-report/tally.ts";
import { SenderPolicy } from "../ingress/sender-policy.ts";
import { Ingress, type Submission } from "../ingress/submit.ts";
import { ContentScanner } from "../ingress/content-scan.ts";
import { RejectionLog } from "../queue/rejection-log.ts";
import type { Runtime } from "../platform/runtime.ts";
import { lockDataDir, secureDataDir } from "../queue/data-dir.ts";
import { refuseNewerSchema } from "../queue/open.ts";
import { BodySpool, spoolDirOf } from "../queue/spool.ts";
import { FreeSpace } from "../queue/free-space.ts";
import { QueueStore } from "../queue/store.ts";
import { DeliveryJournal, journalDirOf } from "../queue/delivery-journal.ts";
import { TlsReportStore } from "../queue/tls-reports.ts";
import { type ClientTimeouts, DEFAULT_TIMEOUTS } from "../smtp/client/index.ts";
import { type CertificateSource, createCertificateSource } from "../tls/certificate-source.ts";
import { AdminToken } from "./admin-token.ts";
import { verpKey } from "./verp-key.ts";
import type { VerpKey } from "../core/verp.ts";
import type { Closers } from "./closers.ts";
import { outboundCa } from "./outbound-ca.ts";
import { openServices, type Services } from "./services.ts";
import { shapingInForce } from "./shaping-file.ts";
import { ShapingSettings } from "./shaping-settings.ts";
import { openWarmup, type WarmupService } from "./warmup.ts";
import { destinationEvent } from "../shaping/destination-event.ts";
import { DestinationEventStore } from "../queue/destination-events.ts";
import { UnsubscribeStore } from "../queue/unsubscribes.ts";
import { ListUnsubscribe } from "../unsubscribe/list-unsubscribe.ts";
import { UnsubscribeTokens } from "../unsubscribe/token.ts";
import { Unsubscriber } from "../unsubscribe/unsubscribe.ts";
import { EventFeed } from "../events/feed.ts";
import { canonicalIp } from "../shaping/warmup-ledger.ts";
import { buildFleet, type Fleet } from "./fleet.ts";
import { QueueDepth } from "../events/metrics/queue-depth.ts";
import { inPlace, throughOutbox } from "../queue/shared-writes.ts";
import { RelayMetrics } from "../events/metrics/relay-metrics.ts";
import { providerLookup } from "../delivery/provider.ts";
import { webhookBackoff } from "../events/webhook-backoff.ts";
import { WebhookDispatcher } from "../events/webhook-dispatcher.ts";
import { createWebhookClient, type LookupHost } from "../events/webhook-post.ts";
import { Webhooks } from "../events/webhooks.ts";
import { WebhookStore } from "../queue/webhooks.ts";
import { deliveryLog } from "../events/delivery-log.ts";
import { SmtpTrace } from "./smtp-trace.ts";

/** Deadline of one TLS report upload (RFC 8460 5.4). */
const TLS_REPORT_POST_TIMEOUT_MS = 60_000;

/** How often TLS report counts are written (what a kill -9 may lose) and ended periods reported: a tenth of the period, 1 s to 1 min. */
function tlsReportTickMs(periodMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(periodMs / 10)));
}

/** A host's addresses for a webhook delivery, through the relay's resolver (RELAY_DNS_SERVERS); IPv4 first. */
function webhookLookup(resolver: Resolver): LookupHost {
  return async (host, family) => {
    const [a, aaaa] = await Promise.all([
      family === 6 ? undefined : resolver.a(host),
      family === 4 ? undefined : resolver.aaaa(host),
    ]);
    const addresses = [...(a?.ok ? a.answers : []), ...(aaaa?.ok ? aaaa.answers : [])];
    const errors = [a && !a.ok ? `A ${a.error}` : undefined, aaaa && !aaaa.ok ? `AAAA ${aaaa.error}` : undefined];
    return { addresses, error: errors.filter(Boolean).join(", ") || undefined };
  };
}

/** RFC 5321 4.5.3.2 timeouts, each capped by RELAY_COMMAND_TIMEOUT when set. */
function clientTimeouts(config: Config): Partial<ClientTimeouts> {
  const cap = config.commandTimeout;
  const capped = cap === undefined
    ? {}
    : Object.fromEntries(Object.entries(DEFAULT_TIMEOUTS).map(([stage, ms]) => [stage, Math.min(ms, cap)]));
  return { ...capped, connect: config.connectTimeout };
}

/** Everything `relay serve` runs, built; nothing listens or runs yet. */
export interface ServeServices extends Services {
  /** Message bodies, beside an embedded database only (src/queue/database.ts says why). */
  readonly spool: BodySpool | undefined;
  readonly store: QueueStore;
  readonly adminToken: AdminToken;
  /** The key of VERP tags (app/verp-key.ts): delivery makes them, the bounce reader checks them. */
  readonly verpKey: VerpKey;
  readonly certificates: CertificateSource;
  /** The relay's caching resolver: delivery, inbound checks, TLS reporting. */
  readonly resolver: Resolver;
  readonly delivery: Scheduler;
  readonly ingress: Ingress;
  /** The data directory's free space against RELAY_MIN_FREE_BYTES: ingress refuses new mail below it. */
  readonly freeSpace: FreeSpace;
  /** TLS reporting (RFC 8460), unless RELAY_TLSRPT=false. */
  readonly tlsReporter: TlsReporter | undefined;
  /** The traffic shaping rules delivery follows, which PUT /v1/shaping may change. */
  readonly shaping: ShapingSettings;
  /** IP warmup, when the shaping rules switch it on. */
  readonly warmup: WarmupService | undefined;
  /** Unsubscribes by link (HTTP /u/:token) and by mail (unsubscribe+token@RELAY_BOUNCE_DOMAIN). */
  readonly unsubscriber: Unsubscriber;
  /** New events as they are written, for the node's reports on itself (delivery log lines, metrics). */
  readonly eventFeed: EventFeed;
  /** GET /metrics: the event log counted, the queue, connections, commits, the process. */
  readonly metrics: RelayMetrics;
  /** Webhook endpoints (the API's) and the loops that send them the event log (started by the jobs). */
  readonly webhooks: Webhooks;
  readonly webhookDispatcher: WebhookDispatcher;
  /** SMTP session traces an operator switches on for a client address or a destination (POST /v1/trace). */
  readonly smtpTrace: SmtpTrace;
  /** The node registry, the heartbeat, and in a fleet the partition and the outbox (src/fleet/). */
  readonly fleet: Fleet;
}

/**
 * Build the node's services for serve: the data directory made private and
 * locked (one relay per directory), the shared services (services.ts), then
 * the queue, the delivery loop and ingress. What is opened is added to
 * `closers`, the lock first so that it is released last.
 */
export async function openServeServices(
  config: Config,
  runtime: Runtime,
  version: string,
  log: Logger,
  closers: Closers,
): Promise<ServeServices> {
  // Before anything is opened: a bad RELAY_TLS_CA_FILE or RELAY_SHAPING_FILE stops the start.
  const tlsCa = outboundCa(config.tlsCaFile);
  const shapingFile = shapingInForce(config);
  // Before the lock file is written: a relay refused for a newer schema leaves the data directory as it was.
  await refuseNewerSchema(config.dbUrl, version);
  secureDataDir(config.dataDir, log);
  const lock = await lockDataDir(config.dataDir, runtime); // before the queue and the spool are touched
  closers.add("the data directory's lock", () => lock.release());
  // libSQL's replica logs every failed sync of a partition to stdout, as coloured text amid the relay's JSON
  // lines; the relay says it once instead (src/fleet/partition.ts). A RUST_LOG the operator sets wins.
  if (config.sharedDbUrl !== undefined && runtime.env.RUST_LOG === undefined) {
    await runtime.setNativeEnv("RUST_LOG", "off");
  }
  const services = await openServices(config, version, log, closers, { replica: true });
  const { clock, database, domains } = services;
  const spool = database.batchAfterWrite ? await BodySpool.open(spoolDirOf(config.dataDir)) : undefined;
  if (spool) closers.add("the spool", () => spool.close());
  const journal = DeliveryJournal.open(journalDirOf(config.dataDir), log);
  closers.add("the delivery journal", () => journal.close());
  const metrics = new RelayMetrics(clock, log);
  // Replicated, the store has the shared server hold acceptances through the fleet's replication, built next.
  const built: { fleet?: Fleet } = {};
  const store = new QueueStore(
    database,
    spool,
    clock,
    config.nodeId,
    config.suppressBounceCategories,
    {
      enqueueMeter: (batchSize, ms) => metrics.committed("enqueue", batchSize, ms),
      sharedWrites: services.shared ? throughOutbox : inPlace,
      replication: config.durability === "replicated"
        ? {
          hold: (items) => built.fleet!.replication!.hold(items),
          release: (ids) => built.fleet!.replication!.release(ids),
        }
        : undefined,
    },
  );
  const queueDepth = new QueueDepth(() => store.byDomain.inQueueCounts(), clock);
  metrics.watchQueue(queueDepth);
  const fleet = buildFleet(
    config,
    services,
    store,
    version,
    { depth: () => queueDepth.recipients(), inQueue: () => store.byDomain.inQueueCounts() },
    clock,
    log,
  );
  built.fleet = fleet;
  const { settings } = services;
  const adminToken = await AdminToken.open(config.adminToken, settings, (line) => console.log(line));
  const verp = await verpKey(settings);
  const shaping = await ShapingSettings.open(config, shapingFile, settings, clock, log);
  const certificates = await createCertificateSource({
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    dataDir: config.dataDir,
    hostname: config.hostname,
    clock,
    log,
  });
  closers.add("the TLS certificate source", () => certificates.close());

  // Warmup is switched on or off at start: its ledger keeps state that a rule change mid-run would orphan.
  const warmupPlans = shaping.current().rules.warmup;
  // In a fleet each IP's warmup is kept on the shared server (without RELAY_SOURCE_IP, nodes could not tell theirs).
  const warmupShared = services.shared !== undefined && config.sourceIp !== undefined;
  const warmup = warmupPlans?.enabled
    ? await (warmupShared
      ? openWarmup(warmupPlans, services.shared!, log, canonicalIp(config.sourceIp))
      : openWarmup(warmupPlans, database, log))
    : undefined;

  const resolver = services.newResolver();
  const mtaSts = config.mtaSts
    ? createMtaSts({
      resolver,
      clock,
      port: config.mtaStsPort,
      ca: tlsCa,
      localAddress: config.sourceIp,
      // RFC 8461 3.3 suggests 60 s for a fetch; RELAY_COMMAND_TIMEOUT, when set, shortens it as it does every outbound stage.
      timeoutMs: config.commandTimeout === undefined
        ? undefined
        : Math.min(60_000, config.connectTimeout + config.commandTimeout),
    })
    : undefined;
  // TLS reporting (RFC 8460): sessions counted in memory by the delivery loop, reported by a job.
  const tlsTally = config.tlsrpt ? new TlsTally(clock, config.tlsrptInterval) : undefined;
  const destinationEvents = new DestinationEventStore(database);
  const smtpTrace = new SmtpTrace(clock, log);
  const unsubscribes = new UnsubscribeStore(database, clock);
  const unsubscribeTokens = new UnsubscribeTokens(await unsubscribes.key(UnsubscribeTokens.newKey));
  const unsubscribeAddresses = { publicUrl: config.publicUrl, bounceDomain: config.bounceDomain };
  const route = createRouter({
    routes: config.routes,
    lookupMailHosts: (domain) => resolveMailHosts(resolver, domain),
    mxPort: config.mxPort,
  });
  const loop = new Scheduler({
    store,
    fence: fleet.replication,
    settings: services.nodeSettings,
    verpKey: verp,
    clock,
    retry: { schedule: shaping.current().rules.default.retrySchedule, maxQueueTime: config.maxQueueTime },
    greylistRetry: config.greylistRetry,
    delayWarningAfter: config.delayWarningAfter,
    hostname: config.hostname,
    log,
    plan: createPlanner({
      route,
      sandbox: config.sandbox,
      sandboxTransport: new SandboxTransport(),
      smtp: {
        heloName: config.hostname,
        sourceIp: config.sourceIp,
        tlsMemory: new TlsFallbackMemory(clock),
        timeouts: clientTimeouts(config),
        tlsCa,
      },
      mtaSts,
      staticRoute: (domain) => chosenWithoutMx(config.routes, domain),
      shaping: () => shaping.current().rules,
      log,
      trace: (destination, host, address) => smtpTrace.outbound(destination, host, address),
    }),
    tlsTally,
    steering: {
      automation: () => shaping.current().rules.automation,
      changed: (change, destination, provider) => {
        const event = destinationEvent(change, destination, provider);
        log("info", event.type.replace("_", " "), event.data);
        destinationEvents.append(event).catch((error) =>
          log("error", "recording a destination event failed", { type: event.type, error: String(error) })
        );
      },
      ...(warmup ? { warmup: { ledger: warmup.ledger, sourceIp: config.sourceIp } } : {}),
    },
    meter: metrics.delivery,
    journal,
    perRecipientCopy: new ListUnsubscribe({
      tokens: unsubscribeTokens,
      addresses: unsubscribeAddresses,
      signingKeys: (domain) => domains.signingKeys(domain),
      clock,
      log,
    }),
  });
  shaping.onChange(() => loop.reshape());
  // DKIM signs only what our own submitters send (API, SMTP AUTH, trusted networks), never mail
  // that anyone may send to RELAY_BOUNCE_DOMAIN; and only From domains in the submitter's grant.
  const mayBeSigned = (s: Submission) => s.submitter !== "outside";
  const scanner = config.milters.length === 0 ? undefined : new ContentScanner({
    milters: config.milters,
    scope: config.milterScope,
    hostname: config.hostname,
    maxMessageBytes: config.maxMessageBytes,
    clock,
    log,
  });
  if (scanner) closers.add("the content scanners' connections", () => scanner.close());
  const freeSpace = new FreeSpace(config.dataDir, config.minFreeBytes, log);
  // Known before the listeners open (unknown: nothing is refused); then a periodic job measures it (app/jobs.ts).
  await freeSpace.measure().catch((error) => log("warn", "measuring free space failed", { error: errorText(error) }));
  const ingress = new Ingress({
    store,
    clock,
    hostname: config.hostname,
    onEnqueued: () => loop.wake(),
    sign: async (message, s) => (mayBeSigned(s) ? domains.sign(message, s.senderDomains) : message),
    senderPolicy: new SenderPolicy({ mode: config.senderPolicy, isVerified: (domain) => domains.isVerified(domain) }),
    bounceDomain: config.bounceDomain,
    priorityHeader: config.priorityHeader,
    log,
    suppressions: services.suppressions,
    scanner,
    rejections: new RejectionLog(database, clock),
    freeSpace,
  });

  const tlsReporter = tlsTally
    ? new TlsReporter({
      store: new TlsReportStore(database),
      tally: tlsTally,
      clock,
      resolver,
      hostname: config.hostname,
      organizationName: config.tlsrptOrganization,
      contactInfo: config.tlsrptContact,
      periodMs: config.tlsrptInterval,
      tickMs: tlsReportTickMs(config.tlsrptInterval),
      keepReportsMs: config.retention,
      sendMail: async ({ from, to, body }) => {
        await ingress.submit({
          mailFrom: from,
          recipients: [{ address: to }],
          body,
          source: "report",
          submitter: "relay",
        });
      },
      // RFC 8460 3 allows ignoring certificate errors here; we verify, as the MTA-STS fetch does (RELAY_TLS_CA_FILE).
      post: (url, body, contentType, signal) =>
        runtime.postHttps({
          url,
          body,
          headers: { "content-type": contentType },
          ca: tlsCa,
          timeoutMs: TLS_REPORT_POST_TIMEOUT_MS,
          signal,
        }),
      log,
    })
    : undefined;

  // Reports on what happened, read from the event log after the fact: nothing of it is on the mail's path.
  // The feed begins before the listeners and delivery can write an event, so every one is logged and counted.
  const eventFeed = new EventFeed(store.events, log);
  await eventFeed.start();
  eventFeed.subscribe(deliveryLog(batchLogger(config.logLevel, config.logFormat, (lines) => console.error(lines))));
  eventFeed.subscribe(
    metrics.countEvents(
      providerLookup({ route, shaping: () => shaping.current().rules, sandbox: config.sandbox }),
    ),
  );
  // Endpoints are the fleet's; how far each has got in this node's events is the node's.
  const webhookStore = new WebhookStore(database, clock, services.shared ?? database);
  const webhookDispatcher = new WebhookDispatcher({
    store: webhookStore,
    recent: eventFeed,
    post: createWebhookClient({
      lookup: webhookLookup(resolver),
      allowPrivate: config.webhookAllowPrivate,
      localAddress: config.sourceIp,
      ca: tlsCa,
    }),
    clock,
    log,
    timeoutMs: config.webhookTimeout,
    backoff: webhookBackoff(config.webhookBackoff),
    node: services.shared ? config.nodeId : undefined,
  });
  const webhooks = new Webhooks(webhookStore, webhookDispatcher, config.webhookAllowPrivate);
  metrics.watchWebhooks(() => webhooks.backlogs());

  return {
    ...services,
    spool,
    store,
    adminToken,
    verpKey: verp,
    certificates,
    resolver,
    delivery: loop,
    ingress,
    freeSpace,
    tlsReporter,
    shaping,
    warmup,
    unsubscriber: new Unsubscriber({
      tokens: unsubscribeTokens,
      store: unsubscribes,
      bounceDomain: config.bounceDomain,
      suppressions: services.suppressions,
    }),
    eventFeed,
    metrics,
    webhooks,
    webhookDispatcher,
    smtpTrace,
    fleet,
  };
}
