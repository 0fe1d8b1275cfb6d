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
import { openQueue } from "../queue/open.ts";
import { SettingsStore } from "../queue/settings.ts";
import { spoolDirOf } from "../queue/spool.ts";
import { SuppressionStore } from "../queue/suppressions.ts";
import type { Closers } from "./closers.ts";

/** The services over the node's database, the same for `relay serve` and every CLI command. */
export interface Services {
  readonly clock: TimerClock;
  readonly log: Logger;
  readonly database: Database;
  /** The migrations opening the database applied (`relay migrate` reports them). */
  readonly applied: readonly string[];
  readonly credentials: CredentialStore;
  readonly users: UserService;
  readonly apiKeys: ApiKeyService;
  readonly domains: DomainService;
  readonly suppressions: SuppressionStore;
  readonly settings: SettingsStore;
  /** A resolver of RELAY_DNS_SERVERS with no answers cached yet. */
  newResolver(): Resolver;
}

/**
 * Open the node's database (its schema brought up to date) and build the
 * services over it, one way for serve and the CLI: the same clock, DKIM
 * signer and log. `version` is this binary's (recorded with the migrations
 * it applies). What is opened is added to `closers`.
 */
export async function openServices(
  config: Config,
  version: string,
  log: Logger,
  closers: Closers,
): Promise<Services> {
  const clock = systemClock;
  const { database, applied } = await openQueue(config.dbUrl, { version, log, spoolDir: spoolDirOf(config.dataDir) });
  closers.add("the database", () => database.close());
  // The signer (a worker thread when there is more than one CPU) is made on first use: most CLI commands never sign.
  let signer: Promise<DkimSigner> | undefined;
  closers.add("the DKIM signer", async () => (await signer)?.close());
  const newResolver = () => createResolver(createDnsClient({ servers: config.dnsServers }), { clock });
  const credentials = new CredentialStore(database, clock);
  const domains = new DomainService({
    store: new DomainStore(database),
    clock,
    // Uncached per check: a record just published is seen at once.
    resolver: newResolver,
    hostname: config.hostname,
    sourceIp: config.sourceIp,
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
    applied,
    credentials,
    users: new UserService(credentials),
    apiKeys: new ApiKeyService(credentials),
    domains,
    suppressions: new SuppressionStore(database, clock),
    settings: new SettingsStore(database),
    newResolver,
  };
}
