import { randomBytes } from "node:crypto";
import { systemClock } from "./core/clock.ts";
import type { Config } from "./config/load.ts";
import { createDnsClient } from "./dns/client.ts";
import { resolveMailHosts } from "./dns/mx.ts";
import { createResolver } from "./dns/resolver.ts";
import { DeliveryLoop } from "./delivery/loop.ts";
import { createRouter } from "./delivery/route.ts";
import type { Logger } from "./events/log.ts";
import { hashToken } from "./http/auth.ts";
import { createHttpApp } from "./http/app.ts";
import { smtpHooks } from "./ingress/smtp-hooks.ts";
import { Ingress } from "./ingress/submit.ts";
import type { Runtime } from "./platform/runtime.ts";
import { openDatabase, type Database } from "./queue/database.ts";
import { applyMigrations } from "./queue/migrate.ts";
import { migrationFiles } from "./queue/migration-files.ts";
import { QueueStore } from "./queue/store.ts";
import { startSmtpServer, type SmtpServerHandle } from "./smtp/server/index.ts";

export interface RunningRelay {
  readonly smtpPorts: readonly number[];
  readonly httpPort: number;
  /** SIGTERM: stop accepting, let deliveries finish (or release them), close the database. */
  stop(): Promise<void>;
}

/** Grace for in-flight deliveries at shutdown; what is not done by then is released, not lost. */
const SHUTDOWN_GRACE_MS = 10_000;

export async function openQueue(config: Config): Promise<{ database: Database; applied: string[] }> {
  const database = await openDatabase(config.dbUrl);
  const applied = await applyMigrations(database.client, migrationFiles(), systemClock.now());
  return { database, applied };
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

/** The composition root: every service built here and handed its dependencies. */
export async function startRelay(config: Config, runtime: Runtime, log: Logger): Promise<RunningRelay> {
  const clock = systemClock;
  const { database } = await openQueue(config);
  const store = new QueueStore(database, clock, config.nodeId);
  const tokenHash = await adminTokenHash(config, store, (line) => console.log(line));

  const resolver = createResolver(createDnsClient({ servers: config.dnsServers }), { clock });
  const loop = new DeliveryLoop({
    store,
    clock,
    route: createRouter({
      routes: config.routes,
      lookupMailHosts: (domain) => resolveMailHosts(resolver, domain),
      mxPort: config.mxPort,
    }),
    retry: { schedule: config.retrySchedule, maxQueueTime: config.maxQueueTime },
    hostname: config.hostname,
    sourceIp: config.sourceIp,
    log,
  });
  const ingress = new Ingress({ store, clock, hostname: config.hostname, onEnqueued: () => loop.wake() });

  const smtpServers: SmtpServerHandle[] = [];
  let listening = false;
  const hooks = smtpHooks(ingress, { relayNetworks: config.relayNetworks, bounceDomain: config.bounceDomain });
  for (const address of config.smtpListen) {
    smtpServers.push(
      await startSmtpServer(
        address,
        { hostname: config.hostname, maxMessageBytes: config.maxMessageBytes, maxRecipients: config.maxRecipients },
        hooks,
      ),
    );
  }
  const http = await runtime.serveHttp({
    host: config.httpListen.host,
    port: config.httpListen.port,
    fetch: createHttpApp({
      ingress,
      store,
      adminTokenHash: () => tokenHash,
      maxMessageBytes: config.maxMessageBytes,
      maxRecipients: config.maxRecipients,
      ready: async () => listening && (await database.client.execute("SELECT 1").then(() => true, () => false)),
    }).fetch,
  });
  await loop.start();
  listening = true;
  log("info", "relay started", {
    smtp: smtpServers.map((s) => s.port),
    http: http.port,
    node: config.nodeId,
    runtime: `${runtime.name} ${runtime.version}`,
  });

  return {
    smtpPorts: smtpServers.map((s) => s.port),
    httpPort: http.port,
    async stop() {
      listening = false;
      await Promise.all(smtpServers.map((s) => s.close()));
      await loop.stop(SHUTDOWN_GRACE_MS);
      await Promise.all(smtpServers.map((s) => s.closeAll()));
      await http.stop();
      database.close();
      log("info", "relay stopped");
    },
  };
}
