import { join } from "node:path";
import { availableParallelism } from "node:os";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { ApiKeyService } from "./auth/api-keys.ts";
import { arcKeySource } from "./auth/arc-key.ts";
import { UserService } from "./auth/users.ts";
import { DomainService } from "./auth/domains.ts";
import { cidrContains } from "./core/cidr.ts";
import { systemClock } from "./core/clock.ts";
import type { Config } from "./config/load.ts";
import { createDnsClient } from "./dns/client.ts";
import { resolveMailHosts } from "./dns/mx.ts";
import { createResolver } from "./dns/resolver.ts";
import { createMtaSts } from "./delivery/mta-sts/index.ts";
import { createPlanner } from "./delivery/planner.ts";
import { chosenWithoutMx, createRouter } from "./delivery/route.ts";
import { SandboxTransport } from "./delivery/sandbox.ts";
import { Scheduler } from "./delivery/scheduler.ts";
import { TlsFallbackMemory } from "./delivery/tls-memory.ts";
import { TlsReporter } from "./delivery/tls-report/reporter.ts";
import { TlsTally } from "./delivery/tls-report/tally.ts";
import type { Logger } from "./core/log.ts";
import { adminAuthenticator, anyAuthenticator, hashToken } from "./http/auth.ts";
import { createHttpApp } from "./http/app.ts";
import { createDkimSigner } from "./auth/dkim-signers.ts";
import { createInboundAuth } from "./auth/inbound/index.ts";
import { AuthThrottle } from "./ingress/auth-throttle.ts";
import type { LiteralPolicy } from "./ingress/access.ts";
import { loggedHooks, loggedSessionError } from "./ingress/logged-hooks.ts";
import { ownAddresses } from "./ingress/own-addresses.ts";
import { smtpHooks } from "./ingress/smtp-hooks.ts";
import { SenderPolicy } from "./ingress/sender-policy.ts";
import { Ingress, type Submission } from "./ingress/submit.ts";
import type { Runtime } from "./platform/runtime.ts";
import { CredentialStore } from "./queue/credentials.ts";
import { lockDataDir, secureDataDir } from "./queue/data-dir.ts";
import { DomainStore } from "./queue/domains.ts";
import { openQueue } from "./queue/open.ts";
import { purgeFinished } from "./queue/retention.ts";
import { BodySpool } from "./queue/spool.ts";
import { SpoolCollector } from "./queue/spool-collector.ts";
import { QueueStore } from "./queue/store.ts";
import { TlsReportStore } from "./queue/tls-reports.ts";
import { DEFAULT_TIMEOUTS, type ClientTimeouts } from "./smtp/client/index.ts";
import { startSmtpServer, type SmtpServerHandle, type SmtpServerOptions } from "./smtp/server/index.ts";
import { createCertificateSource } from "./tls/certificate-source.ts";

export interface RunningRelay {
  readonly smtpPorts: readonly number[];
  readonly smtpsPorts: readonly number[];
  readonly httpPort: number;
  /** SIGTERM: stop accepting, let deliveries finish (or release them), close the database. */
  stop(): Promise<void>;
}

/** Grace for in-flight deliveries at shutdown; what is not done by then is released, not lost. */
const SHUTDOWN_GRACE_MS = 10_000;
/** Idempotency-Key answers are replayed for 24 hours, then forgotten. */
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
/** How often finished messages past RELAY_RETENTION are purged. */
const PURGE_INTERVAL_MS = 3_600_000;
/** How often the spool's unused segments are removed and its sparse ones compacted. */
const SPOOL_COLLECT_INTERVAL_MS = 60_000;
/** Deadline of one TLS report upload (RFC 8460 5.4). */
const TLS_REPORT_POST_TIMEOUT_MS = 60_000;

/** How often TLS report counts are written (what a kill -9 may lose) and ended periods reported: a tenth of the period, 1 s to 1 min. */
function tlsReportTickMs(periodMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(periodMs / 10)));
}

/**
 * The admin token: the configured one, or one made at first start, printed
 * once and kept only as a hash.
 */
async function adminTokenHash(config: Config, store: QueueStore, announce: (line: string) => void): Promise<string> {
  if (config.adminToken) return hashToken(config.adminToken);
  const stored = await store.getSetting("admin_token_sha256");
  if (stored) return stored;
  const token = randomBytes(24).toString("base64url");
  const hash = hashToken(token);
  await store.setSetting("admin_token_sha256", hash);
  announce(`relay: generated admin token (shown once, stored hashed): ${token}`);
  return hash;
}

/** RFC 5321 4.5.3.2 timeouts, each capped by RELAY_COMMAND_TIMEOUT when set. */
function clientTimeouts(config: Config): Partial<ClientTimeouts> {
  const cap = config.commandTimeout;
  const capped = cap === undefined ? {} : Object.fromEntries(Object.entries(DEFAULT_TIMEOUTS).map(([stage, ms]) => [stage, Math.min(ms, cap)]));
  return { ...capped, connect: config.connectTimeout };
}

/**
 * Trust anchors for outbound verification (MTA-STS policy fetches, MX
 * certificates under an enforce policy): the bundled roots plus the PEM
 * certificates in RELAY_TLS_CA_FILE; undefined (the bundled roots alone)
 * without it. Read once at start.
 */
function outboundCa(config: Config): string[] | undefined {
  if (config.tlsCaFile === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(config.tlsCaFile, "utf8");
  } catch (error) {
    throw new Error(`RELAY_TLS_CA_FILE: cannot read ${config.tlsCaFile}: ${(error as Error).message}`);
  }
  const extra = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (extra.length === 0) throw new Error(`RELAY_TLS_CA_FILE: ${config.tlsCaFile} holds no PEM certificate`);
  return [...rootCertificates, ...extra];
}

/** Start a listener; a failure names what could not listen where (e.g. the port is taken). */
async function listenOrExplain<T>(what: string, address: { host: string; port: number }, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const reason = (error as { code?: string }).code ?? (error instanceof Error ? error.message : String(error));
    throw new Error(`cannot listen for ${what} on ${address.host}:${address.port}: ${reason}`, { cause: error });
  }
}

/** The composition root: every service built here and handed its dependencies. */
export async function startRelay(config: Config, runtime: Runtime, version: string, log: Logger): Promise<RunningRelay> {
  const clock = systemClock;
  const tlsCa = outboundCa(config); // before anything is opened: a bad RELAY_TLS_CA_FILE stops the start
  secureDataDir(config.dataDir, log);
  const lock = await lockDataDir(config.dataDir, runtime); // before the queue and the spool are touched
  const { database } = await openQueue(config.dbUrl);
  const spool = database.batchAfterWrite ? await BodySpool.open(join(config.dataDir, "spool")) : undefined;
  const store = new QueueStore(database, spool, clock, config.nodeId);
  const credentials = new CredentialStore(database, clock);
  const tokenHash = await adminTokenHash(config, store, (line) => console.log(line));
  const certificates = await createCertificateSource({
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    dataDir: config.dataDir,
    hostname: config.hostname,
    clock,
    log,
  });
  const users = new UserService(credentials);
  const apiKeys = new ApiKeyService(credentials);

  const resolver = createResolver(createDnsClient({ servers: config.dnsServers }), { clock });
  const mtaSts = config.mtaSts
    ? createMtaSts({
        resolver,
        clock,
        port: config.mtaStsPort,
        ca: tlsCa,
        localAddress: config.sourceIp,
        // RFC 8461 3.3 suggests 60 s for a fetch; RELAY_COMMAND_TIMEOUT, when set, shortens it as it does every outbound stage.
        timeoutMs: config.commandTimeout === undefined ? undefined : Math.min(60_000, config.connectTimeout + config.commandTimeout),
      })
    : undefined;
  // TLS reporting (RFC 8460): sessions counted in memory by the delivery loop, reported by a job.
  const tlsTally = config.tlsrpt ? new TlsTally(clock, config.tlsrptInterval) : undefined;
  const loop = new Scheduler({
    store,
    clock,
    retry: { schedule: config.retrySchedule, maxQueueTime: config.maxQueueTime },
    delayWarningAfter: config.delayWarningAfter,
    hostname: config.hostname,
    log,
    plan: createPlanner({
      route: createRouter({
        routes: config.routes,
        lookupMailHosts: (domain) => resolveMailHosts(resolver, domain),
        mxPort: config.mxPort,
      }),
      sandbox: config.sandbox,
      sandboxTransport: new SandboxTransport(),
      smtp: {
        heloName: config.hostname,
        sourceIp: config.sourceIp,
        tlsMemory: new TlsFallbackMemory(clock),
        maxRecipients: config.recipientsPerTransaction,
        timeouts: clientTimeouts(config),
        tlsCa,
      },
      mtaSts,
      staticRoute: (domain) => chosenWithoutMx(config.routes, domain),
      log,
    }),
    limits: {
      maxConnections: config.destinationMaxConnections,
      maxMessagesPerConnection: config.messagesPerConnection,
      idleMs: config.destinationIdleTimeout,
    },
    tlsTally,
  });
  const dkimSigner = await createDkimSigner(availableParallelism());
  const domains = new DomainService({
    store: new DomainStore(database),
    clock,
    // Uncached per check: a record just published is seen at once.
    resolver: () => createResolver(createDnsClient({ servers: config.dnsServers }), { clock }),
    hostname: config.hostname,
    sourceIp: config.sourceIp,
    bounceDomain: config.bounceDomain,
    rotationGraceMs: config.dkimRotationGrace,
    checkIntervalMs: config.domainCheckInterval,
    log,
    signWith: (message, keys, now) => dkimSigner.sign(message, keys, now),
  });
  // DKIM signs only what our own submitters send (API, SMTP AUTH, trusted networks), never mail
  // that anyone may send to RELAY_BOUNCE_DOMAIN; and only From domains in the submitter's grant.
  const mayBeSigned = (s: Submission) => s.submitter !== "outside";
  const ingress = new Ingress({
    store,
    clock,
    hostname: config.hostname,
    onEnqueued: () => loop.wake(),
    sign: async (message, s) => (mayBeSigned(s) ? domains.sign(message, s.senderDomains) : message),
    senderPolicy: new SenderPolicy({ mode: config.senderPolicy, isVerified: (domain) => domains.isVerified(domain) }),
    bounceDomain: config.bounceDomain,
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
          await ingress.submit({ mailFrom: from, recipients: [{ address: to }], body, source: "report", submitter: "relay" });
        },
        // RFC 8460 3 allows ignoring certificate errors here; we verify, as the MTA-STS fetch does (RELAY_TLS_CA_FILE).
        post: (url, body, contentType, signal) =>
          runtime.postHttps({ url, body, headers: { "content-type": contentType }, ca: tlsCa, timeoutMs: TLS_REPORT_POST_TIMEOUT_MS, signal }),
        log,
      })
    : undefined;

  const listeners = [...config.smtpListen, ...config.smtpsListen, config.httpListen];
  const literals: LiteralPolicy = {
    routes: config.routes,
    ownAddresses: ownAddresses([...(config.sourceIp ? [config.sourceIp] : []), ...listeners.map((l) => l.host)]),
  };
  const hooks = loggedHooks(
    smtpHooks({
      ingress,
      policy: { relayNetworks: config.relayNetworks, bounceDomain: config.bounceDomain, literals },
      authenticator: users,
      throttle: new AuthThrottle(clock),
      // ARC sets are sealed with RELAY_ARC_DOMAIN's active RSA DKIM key, when there is one.
      inbound: createInboundAuth({ resolver, clock, hostname: config.hostname, log, arcKey: arcKeySource(domains, config.arcDomain, log) }),
    }),
    log,
  );
  const smtpOptions: SmtpServerOptions = {
    hostname: config.hostname,
    maxMessageBytes: config.maxMessageBytes,
    maxRecipients: config.maxRecipients,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    // Trusted networks are the operator's own submitters (as Postfix exempts mynetworks).
    perIpLimitExempt: (address) => cidrContains(config.relayNetworks, address),
    idleTimeoutMs: config.smtpIdleTimeout,
    maxSessionMs: config.smtpMaxSessionTime,
    tls: () => certificates.current(),
    onError: loggedSessionError(log),
  };
  const smtpServers: SmtpServerHandle[] = [];
  for (const address of config.smtpListen) {
    smtpServers.push(await listenOrExplain("SMTP", address, () => startSmtpServer(address, smtpOptions, hooks)));
  }
  const smtpsServers: SmtpServerHandle[] = [];
  for (const address of config.smtpsListen) {
    smtpsServers.push(await listenOrExplain("SMTPS", address, () => startSmtpServer(address, { ...smtpOptions, implicitTls: true }, hooks)));
  }

  let listening = false;
  const http = await listenOrExplain("HTTP", config.httpListen, () => runtime.serveHttp({
    host: config.httpListen.host,
    port: config.httpListen.port,
    fetch: createHttpApp({
      ingress,
      store,
      authenticate: anyAuthenticator(adminAuthenticator(() => tokenHash), (token) => apiKeys.verify(token)),
      idempotency: credentials,
      maxMessageBytes: config.maxMessageBytes,
      maxRecipients: config.maxRecipients,
      literals,
      ready: async () => listening && (await store.answers()),
      clock,
      version,
      domains,
      log,
    }).fetch,
  }));
  const domainChecks = setInterval(() => {
    domains.maintain().catch((error) => log("warn", "checking sending domains failed", { error: String(error) }));
  }, config.domainCheckInterval);
  const pruneIdempotency = setInterval(() => {
    credentials.pruneResponses(IDEMPOTENCY_TTL_MS).catch((error) => log("warn", "pruning idempotency keys failed", { error: String(error) }));
  }, 3_600_000);
  const purge = config.retention > 0 ? setInterval(() => void purgeFinished(store, clock, config.retention, log), PURGE_INTERVAL_MS) : undefined;
  const spoolCollector = spool && new SpoolCollector(store, spool, clock, log);
  void spoolCollector?.collect(); // what a crash or the last run left
  const collectSpool = spoolCollector && setInterval(() => void spoolCollector.collect(), SPOOL_COLLECT_INTERVAL_MS);
  await loop.start();
  tlsReporter?.start();
  listening = true;
  const allSmtp = [...smtpServers, ...smtpsServers];
  log("info", "relay started", {
    smtp: smtpServers.map((s) => s.port),
    smtps: smtpsServers.map((s) => s.port),
    http: http.port,
    node: config.nodeId,
    tls: certificates.info().origin,
    runtime: `${runtime.name} ${runtime.version}`,
  });

  return {
    smtpPorts: smtpServers.map((s) => s.port),
    smtpsPorts: smtpsServers.map((s) => s.port),
    httpPort: http.port,
    async stop() {
      listening = false;
      clearInterval(pruneIdempotency);
      clearInterval(purge);
      clearInterval(collectSpool);
      clearInterval(domainChecks);
      await Promise.all(allSmtp.map((s) => s.close()));
      await loop.stop(SHUTDOWN_GRACE_MS);
      await tlsReporter?.stop(); // after the deliveries, so that their sessions are counted and written
      await Promise.all(allSmtp.map((s) => s.closeAll()));
      await http.stop();
      certificates.close();
      dkimSigner.close();
      await database.close();
      await spool?.close();
      lock.release();
      log("info", "relay stopped");
    },
  };
}
