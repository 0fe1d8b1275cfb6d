import type { WebhookSummary } from "../dashboard/webhooks.tsx";
import type { Webhooks } from "../events/webhooks.ts";
import { arcKeySource } from "../auth/arc-key.ts";
import { createInboundAuth } from "../auth/inbound/index.ts";
import type { Config } from "../config/load.ts";
import { cidrContains } from "../core/cidr.ts";
import { MemoryBudget } from "../core/memory-budget.ts";
import { reply } from "../core/reply.ts";
import { namedRoute } from "../core/route.ts";
import { queueSummary } from "../delivery/queue-summary.ts";
import { FeedbackReceiver } from "../feedback/receiver.ts";
import type { FleetSource } from "../fleet/fleet-view.ts";
import { ADMIN_PRINCIPAL, adminAuthenticator, anyAuthenticator, hashToken, LOCAL_CLI_PRINCIPAL } from "../http/auth.ts";
import { EventRates } from "../dashboard/rates.ts";
import { createHttpApp } from "../http/app.ts";
import type { QueueRouteDeps } from "../http/queue.ts";
import { EventCounts } from "../queue/event-counts.ts";
import { MessageSearch } from "../queue/message-search.ts";
import type { LiteralPolicy } from "../ingress/access.ts";
import { AuthThrottle } from "../ingress/auth-throttle.ts";
import { loggedHooks, loggedSessionError } from "../ingress/logged-hooks.ts";
import { ownAddresses } from "../ingress/own-addresses.ts";
import { smtpHooks } from "../ingress/smtp-hooks.ts";
import { openFileLimit } from "../platform/file-limit.ts";
import type { Runtime } from "../platform/runtime.ts";
import {
  Admission,
  type SessionInfo,
  type SmtpServerHandle,
  type SmtpServerOptions,
  startSmtpServer,
} from "../smtp/server/index.ts";
import type { Closers } from "./closers.ts";
import { effectiveMaxConnections } from "./connection-cap.ts";
import { localUrl, newControlToken, removeControlFile, writeControlFile } from "./control-file.ts";
import type { ServeServices } from "./serve-services.ts";
import { traceClient } from "./smtp-trace.ts";

export interface Listeners {
  readonly smtpPorts: readonly number[];
  readonly smtpsPorts: readonly number[];
  readonly httpPort: number;
  /** The first step of a shutdown: SMTP takes no new connection; sessions in progress go on. */
  stopAccepting(): Promise<void>;
}

/** Start a listener; a failure names what could not listen where (e.g. the port is taken). */
async function listenOrExplain<T>(
  what: string,
  address: { host: string; port: number },
  start: () => Promise<T>,
): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const reason = (error as { code?: string }).code ?? (error instanceof Error ? error.message : String(error));
    throw new Error(`cannot listen for ${what} on ${address.host}:${address.port}: ${reason}`, { cause: error });
  }
}

/**
 * Open the front ends: SMTP (STARTTLS), SMTPS (implicit TLS) and HTTP, in
 * that order. Each is added to `closers` as soon as it listens, so a later
 * one that cannot listen leaves none open.
 */
export async function startListeners(
  config: Config,
  services: ServeServices,
  http: { readonly runtime: Runtime; readonly version: string; readonly ready: () => Promise<boolean> },
  closers: Closers,
): Promise<Listeners> {
  const { clock, log, ingress, users, domains, resolver, certificates } = services;
  const { drain } = services.fleet;
  /**
   * A draining node keeps its SMTP ports open and answers every new
   * connection, and the next MAIL of a session already open, with 421 4.3.2
   * ("system not accepting network messages", RFC 3463) rather than closing
   * its listeners: a client cannot tell a refused connection from a dead
   * host, while a 421 says why in its log; either way it tries its next
   * host or retries later (RFC 5321 3.8, 4.5.4.1), and nothing it sent is
   * lost. /readyz answers 503 meanwhile, for load balancers.
   */
  const draining = reply(421, "4.3.2", `${config.hostname} is draining: no new mail here, try another host`);
  const literals: LiteralPolicy = {
    routes: config.routes,
    ownAddresses: ownAddresses([
      ...(config.sourceIp ? [config.sourceIp] : []),
      ...[...config.smtpListen, ...config.smtpsListen, config.httpListen].map((l) => l.host),
    ]),
  };
  const logged = loggedHooks(
    smtpHooks({
      ingress,
      policy: { relayNetworks: config.relayNetworks, bounceDomain: config.bounceDomain, literals },
      authenticator: users,
      throttle: new AuthThrottle(clock),
      // ARC sets are sealed with RELAY_ARC_DOMAIN's active RSA DKIM key, when there is one.
      inbound: createInboundAuth({
        resolver,
        clock,
        hostname: config.hostname,
        log,
        arcKey: arcKeySource(domains, config.arcDomain, log),
      }),
      // The relay reads its bounce domain's mail itself, unless the operator routes that domain to a
      // system of their own (RELAY_ROUTES names it): then it is checked, sealed (ARC) and handed there.
      bounceReader: config.bounceDomain === undefined || namedRoute(config.routes, config.bounceDomain)
        ? undefined
        : new FeedbackReceiver({
          store: services.store.feedback,
          bounceDomain: config.bounceDomain,
          verpKey: services.verpKey,
          unsubscribeByMail: (rcpt) => services.unsubscriber.unsubscribeByMail(rcpt),
          log,
        }),
      refuseNewMail: () => (drain.draining ? draining : undefined),
    }),
    log,
  );
  const hooks = { ...logged, transcript: (session: SessionInfo) => services.smtpTrace.inbound(session) };
  const fileLimit = openFileLimit();
  const maxConnections = effectiveMaxConnections(config.maxConnections, fileLimit);
  if (maxConnections.lowered) {
    log("warn", "RELAY_MAX_CONNECTIONS is above what the open-file limit allows: SMTP takes fewer connections", {
      configured: config.maxConnections,
      effective: maxConnections.max,
      openFileLimit: fileLimit,
    });
  }
  // One budget for SMTP and HTTP: both hold a message whole in memory while they receive it.
  const receiving = new MemoryBudget(config.receivingMemory);
  const smtpOptions: SmtpServerOptions = {
    hostname: config.hostname,
    messageMemory: receiving,
    maxMessageBytes: config.maxMessageBytes,
    maxRecipients: config.maxRecipients,
    // One count for every SMTP and SMTPS listener: they share the process's descriptors.
    admission: new Admission(
      config.hostname,
      maxConnections.max,
      config.maxConnectionsPerIp,
      // Trusted networks are the operator's own submitters (as Postfix exempts mynetworks).
      (address) => cidrContains(config.relayNetworks, address),
      // A tenth of the places is theirs alone: a flood from outside cannot lock the operator's own submitters out.
      Math.ceil(maxConnections.max / 10),
    ),
    idleTimeoutMs: config.smtpIdleTimeout,
    maxSessionMs: config.smtpMaxSessionTime,
    tls: () => certificates.current(),
    onError: loggedSessionError(log),
  };
  const listen = async (what: string, addresses: Config["smtpListen"], options: SmtpServerOptions) => {
    const servers: SmtpServerHandle[] = [];
    for (const address of addresses) {
      const server = await listenOrExplain(what, address, () => startSmtpServer(address, options, hooks));
      closers.add(`the ${what} listener on ${address.host}:${server.port}`, () => server.closeAll());
      services.metrics.watchListener(what.toLowerCase(), () => server.connections());
      servers.push(server);
    }
    return servers;
  };
  const smtp = await listen("SMTP", config.smtpListen, smtpOptions);
  const smtps = await listen("SMTPS", config.smtpsListen, { ...smtpOptions, implicitTls: true });

  const controlToken = newControlToken();
  const controlTokenHash = hashToken(controlToken);
  const { delivery, store, shaping } = services;
  const authenticate = anyAuthenticator(
    adminAuthenticator(() => services.adminToken.hash()),
    adminAuthenticator(() => controlTokenHash, LOCAL_CLI_PRINCIPAL),
    (token) => services.apiKeys.verify(token),
  );
  const messageSearch = new MessageSearch(services.database);
  /** Recipients made due now: the delivery loop looks at once rather than at its next poll. */
  const woken = (due: number) => {
    if (due > 0) delivery.wake();
    return due;
  };
  const queue: QueueRouteDeps<Awaited<ReturnType<typeof delivery.operator.resolve>>> = {
    summary: () => queueSummary(delivery.operator.destinationStates(), store.byDomain),
    resolve: (ref) => delivery.operator.resolve(ref),
    suspend: (destination, until) => delivery.operator.suspend(destination, until),
    resume: (destination) => delivery.operator.resume(destination),
    retry: (destination) => delivery.operator.retry(destination),
    bounce: (destination) => delivery.operator.bounce(destination),
    hold: (destination) => delivery.operator.holdDestination(destination),
    release: async (destination) => woken(await store.control.release({ domains: destination.domains })),
    list: (query) => store.listQueue(query),
    now: () => clock.now(),
  };
  const fleet: FleetSource = {
    self: config.nodeId,
    shared: services.shared !== undefined,
    nodes: () => services.fleet.registry.list(),
    deadAfterMs: services.fleet.deadAfterMs,
    partitionedSince: () => services.fleet.partition?.since,
    outboxWaiting: services.fleet.outbox && (() => services.fleet.outbox!.waiting()),
    now: () => clock.now(),
  };
  const server = await listenOrExplain("HTTP", config.httpListen, () =>
    http.runtime.serveHttp({
      host: config.httpListen.host,
      port: config.httpListen.port,
      fetch: createHttpApp({
        ingress,
        store: services.store,
        authenticate,
        idempotency: services.fleet.idempotency,
        suppressions: services.suppressions,
        maxMessageBytes: config.maxMessageBytes,
        receivingMemory: receiving,
        maxRecipients: config.maxRecipients,
        literals,
        priorityHeader: config.priorityHeader,
        ready: http.ready,
        clock,
        version: http.version,
        domains,
        shaping: {
          current: () => shaping.current(),
          put: (text) => shaping.put(text),
          reset: () => shaping.reset(),
        },
        warmup: {
          enabled: services.warmup !== undefined,
          report: () => services.warmup?.ledger.report(clock.now()) ?? [],
        },
        unsubscribe: services.unsubscriber,
        metrics: services.metrics,
        webhooks: services.webhooks,
        queue,
        dashboard: {
          authenticate,
          stillValid: async (principal) =>
            principal === ADMIN_PRINCIPAL || principal === LOCAL_CLI_PRINCIPAL ||
            await services.credentials.apiKeyLive(principal.id),
          clock,
          rates: new EventRates(new EventCounts(services.database), clock),
          queue,
          messages: {
            messageView: (id) => store.messageView(id),
            search: (query, limit) => messageSearch.search(query, limit),
          },
          suppressions: services.suppressions,
          domains,
          webhooks: { list: () => webhookSummaries(services.webhooks) },
          fleet,
          log,
        },
        fleet,
        drain: { self: config.nodeId, drain },
        trace: {
          start: (target, until) => services.smtpTrace.start(target, until),
          stop: (target) => services.smtpTrace.stop(target),
          list: () => services.smtpTrace.list(),
          client: traceClient,
          resolve: (ref) => delivery.operator.resolve(ref),
          now: () => clock.now(),
        },
        messageSteering: {
          hold: (at) => store.control.hold(at),
          release: async (at) => woken(await store.control.release(at)),
          retry: async (at) => woken(await store.control.retryNow(at)),
          bounce: (at) => delivery.operator.bounceRecipients(at),
          cancel: async (at) => {
            const cancelled = await store.control.cancel(at);
            // Replicated: no node that adopts the message later sends what was cancelled here.
            if (cancelled > 0) await services.fleet.replication?.cancelled(at);
            return cancelled;
          },
        },
        log,
      }).fetch,
    }));
  closers.add(`the HTTP listener on ${config.httpListen.host}:${server.port}`, () => server.stop());
  writeControlFile(config.dataDir, { url: localUrl(config.httpListen.host, server.port), token: controlToken });
  closers.add("the control file", () => removeControlFile(config.dataDir));

  return {
    smtpPorts: smtp.map((s) => s.port),
    smtpsPorts: smtps.map((s) => s.port),
    httpPort: server.port,
    stopAccepting: async () => {
      await Promise.all([...smtp, ...smtps].map((s) => s.close()));
    },
  };
}

/** Each webhook endpoint with its backlog, as the dashboard's webhooks page shows it. */
async function webhookSummaries(webhooks: Webhooks): Promise<WebhookSummary[]> {
  const [endpoints, backlogs] = await Promise.all([webhooks.list(), webhooks.backlogs()]);
  const counts = new Map(backlogs.map((b) => [b.id, b]));
  return endpoints.map((w) => ({
    id: w.id,
    url: w.url,
    events: w.eventTypes,
    backlog: counts.get(w.id)?.backlog ?? 0,
    deadLetters: counts.get(w.id)?.deadLetters ?? 0,
    lastDeliveryAt: w.lastSuccessAt ?? undefined,
    lastError: w.lastError ?? undefined,
  }));
}
