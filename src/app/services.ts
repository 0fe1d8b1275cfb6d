import { availableParallelism } from "node:os";
import { ApiKeyService } from "../auth/api-keys.ts";
import { createDkimSigner, type DkimSigner } from "../auth/dkim-signers.ts";
import { DomainService } from "../auth/domains.ts";
import { UserService } from "../auth/users.ts";
import type { Config } from "../config/load.ts";
import { systemClock, type TimerClock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import { createDnsClient } from "../dns/client.ts";
import { createResolver, type Resolver } from "../dns/resolver.ts";
import { CredentialStore } from "../queue/credentials.ts";
import type { Database } from "../queue/database.ts";
import { DomainStore } from "../queue/domains.ts";
import { NodeRegistry } from "../fleet/node-registry.ts";
import { openSharedRemote, openSharedReplica, type SharedDatabase } from "../fleet/shared-database.ts";
import { openQueue } from "../queue/open.ts";
import { SettingsStore } from "../queue/settings.ts";
import { spoolDirOf } from "../queue/spool.ts";
import { SuppressionStore } from "../queue/suppressions.ts";
import type { Closers } from "./closers.ts";

/** The services over the node's database, the same for `relay serve` and every CLI command. */
export interface Services {
  readonly clock: TimerClock;
  readonly log: Logger;
  /** The node's own database: its queue, spool index, events and its destinations' state. */
  readonly database: Database;
  /** The fleet's shared state (RELAY_SHARED_DB_URL); undefined when the node runs alone. */
  readonly shared: SharedDatabase | undefined;
  /** The migrations opening the database applied (`relay migrate` reports them). */
  readonly applied: readonly string[];
  readonly credentials: CredentialStore;
  readonly users: UserService;
  readonly apiKeys: ApiKeyService;
  readonly domains: DomainService;
  readonly suppressions: SuppressionStore;
  /** Settings the whole fleet shares (the admin token, the VERP key, shaping rules). */
  readonly settings: SettingsStore;
  /** Settings of this node alone (its destinations' suspensions: a provider judges each sending IP). */
  readonly nodeSettings: SettingsStore;
  /** A resolver of RELAY_DNS_SERVERS with no answers cached yet. */
  newResolver(): Resolver;
}

/**
 * Open the node's database (its schema brought up to date) and, in a fleet,
 * the shared state, and build the services over them, one way for serve and
 * the CLI: the same clock, DKIM signer and log. Domains, DKIM keys, users,
 * API keys, suppressions and the fleet's settings are read and written where
 * the fleet shares them; `serve` reads them from a replica (`replica`), a CLI
 * command from the server. `version` is this binary's (recorded with the
 * migrations it applies). What is opened is added to `closers`.
 */
export async function openServices(
  config: Config,
  version: string,
  log: Logger,
  closers: Closers,
  { replica = false }: { replica?: boolean } = {},
): Promise<Services> {
  const clock = systemClock;
  const { database, applied } = await openQueue(config.dbUrl, { version, log, spoolDir: spoolDirOf(config.dataDir) });
  closers.add("the database", () => database.close());
  const shared = await openShared(config, version, log, replica);
  if (shared) closers.add("the shared database", () => shared.close());
  const state = shared ?? database;
  // The signer (a worker thread when there is more than one CPU) is made on first use: most CLI commands never sign.
  let signer: Promise<DkimSigner> | undefined;
  closers.add("the DKIM signer", async () => (await signer)?.close());
  const newResolver = () => createResolver(createDnsClient({ servers: config.dnsServers }), { clock });
  const credentials = new CredentialStore(state, clock);
  const domains = new DomainService({
    store: new DomainStore(state),
    clock,
    // Uncached per check: a record just published is seen at once.
    resolver: newResolver,
    hostname: config.hostname,
    sourceIp: config.sourceIp,
    fleetIps: shared ? () => new NodeRegistry(shared).sourceIps() : undefined,
    bounceDomain: config.bounceDomain,
    rotationGraceMs: config.dkimRotationGrace,
    checkIntervalMs: config.domainCheckInterval,
    log,
    signWith: async (message, keys, now) =>
      (await (signer ??= createDkimSigner(availableParallelism()))).sign(message, keys, now),
  });
  return {
    clock,
    log,
    database,
    shared,
    applied,
    credentials,
    users: new UserService(credentials),
    apiKeys: new ApiKeyService(credentials),
    domains,
    suppressions: new SuppressionStore(state, clock),
    settings: new SettingsStore(state),
    nodeSettings: new SettingsStore(database),
    newResolver,
  };
}

async function openShared(
  config: Config,
  version: string,
  log: Logger,
  replica: boolean,
): Promise<SharedDatabase | undefined> {
  if (config.sharedDbUrl === undefined) return undefined;
  const options = { url: config.sharedDbUrl, authToken: config.sharedDbToken, version, log };
  const { database } = replica
    ? await openSharedReplica({ ...options, dataDir: config.dataDir })
    : await openSharedRemote(options);
  return database;
}
