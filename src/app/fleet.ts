import { isIPv6 } from "node:net";
import type { Config } from "../config/load.ts";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import { Drain } from "../fleet/drain.ts";
import { Heartbeat, heartbeatEvery } from "../fleet/heartbeat.ts";
import { fleetIdempotency } from "../fleet/idempotency.ts";
import type { IdempotencyStore } from "../http/idempotency.ts";
import type { InQueueCount } from "../queue/records.ts";
import type { QueueStore } from "../queue/store.ts";
import { NodeRegistry } from "../fleet/node-registry.ts";
import { OutboxForwarder } from "../fleet/outbox-forwarder.ts";
import { Partition } from "../fleet/partition.ts";
import { Replication } from "../fleet/replication.ts";
import type { SharedDatabase } from "../fleet/shared-database.ts";
import type { PeriodicJob } from "./periodic.ts";
import type { Services } from "./services.ts";

/** The node's place in its fleet: the registry, its heartbeat, and in a fleet its link to the shared server. */
export interface Fleet {
  readonly registry: NodeRegistry;
  readonly heartbeat: Heartbeat;
  /** In a fleet only (RELAY_SHARED_DB_URL): whether the shared server answers, and the writes waiting for it. */
  readonly partition: Partition | undefined;
  readonly outbox: OutboxForwarder | undefined;
  /** RELAY_NODE_DEAD_AFTER. */
  readonly deadAfterMs: number;
  /** Idempotency keys: the shared server's, kept in the outbox while it is away (src/fleet/idempotency.ts). */
  readonly idempotency: IdempotencyStore;
  /** RELAY_DURABILITY=replicated: the copies on the shared server, the lease, adoption (src/fleet/replication.ts). */
  readonly replication: Replication | undefined;
  /** `relay drain`: whether the node still takes new mail, and what is left of its queue. */
  readonly drain: Drain;
}

/** The node's queue, as the heartbeat and a drain report it. */
export interface QueueCounts {
  /** Recipients in the queue (a count that may be a few seconds old). */
  readonly depth: () => Promise<number>;
  /** Recipients in the queue by domain and state, counted now. */
  readonly inQueue: () => Promise<readonly InQueueCount[]>;
}

export function buildFleet(
  config: Config,
  services: Pick<Services, "database" | "shared" | "credentials">,
  store: Pick<QueueStore, "adopt" | "control">,
  version: string,
  queue: QueueCounts,
  clock: Clock,
  log: Logger,
): Fleet {
  const { database, shared, credentials } = services;
  const partition = shared ? new Partition(clock, log) : undefined;
  if (shared?.offline) partition!.failed(new Error("the shared database did not answer when the node started"));
  const registry = registryOf(services);
  const replication = shared && config.durability === "replicated"
    ? new Replication({
      shared,
      local: database,
      registry,
      store,
      nodeId: config.nodeId,
      deadAfterMs: config.nodeDeadAfter,
      maxQueueTime: config.maxQueueTime,
      clock,
      log,
    })
    : undefined;
  const heartbeat = new Heartbeat({
    write: replication ? (row) => replication.beat(row) : (row) => registry.beat(row),
    everyMs: heartbeatEvery(config.nodeDeadAfter),
    node: {
      id: config.nodeId,
      sourceIp: config.sourceIp ?? null,
      hostname: config.hostname,
      apiUrl: config.nodeUrl ?? defaultNodeUrl(config),
      version,
    },
    queueDepth: queue.depth,
    clock,
    partition,
  });
  return {
    registry,
    heartbeat,
    partition,
    outbox: shared && partition ? new OutboxForwarder(database, shared, partition, log) : undefined,
    deadAfterMs: config.nodeDeadAfter,
    idempotency: partition ? fleetIdempotency(credentials, database, partition, clock) : credentials,
    replication,
    // No handOver yet: replicated mail is adopted by the others once the stopped node has been silent long enough.
    drain: new Drain({ heartbeat, inQueue: queue.inQueue, clock, log }),
  };
}

export { nodeStatus } from "../fleet/fleet-view.ts";

/** The node registry: on the shared server in a fleet, in the node's own database when it runs alone. */
export function registryOf(services: Pick<Services, "database" | "shared">): NodeRegistry {
  return new NodeRegistry(services.shared ?? services.database);
}

/** How often a node that started without the shared server tries it again. */
const RECONNECT_EVERY_MS = 5_000;

/** The fleet's periodic work: the heartbeat, and in a fleet the outbox and reaching a server that was away at start. */
export function fleetJobs(fleet: Fleet, shared: SharedDatabase | undefined): PeriodicJob[] {
  const { heartbeat, outbox, partition } = fleet;
  if (!shared || !outbox || !partition) return [heartbeat];
  const reconnect: PeriodicJob = {
    name: "reaching the shared database",
    everyMs: RECONNECT_EVERY_MS,
    run: async () => {
      if (!shared.offline) return;
      await shared.reconnect().then(() => partition.reached(), (error) => partition.failed(error));
    },
  };
  return [heartbeat, outbox, reconnect, ...(fleet.replication ? [fleet.replication] : [])];
}

/**
 * Where the other nodes reach this node's API when RELAY_NODE_URL is unset:
 * RELAY_HTTP_LISTEN's address, or for a wildcard address RELAY_SOURCE_IP
 * (else the host name).
 */
export function defaultNodeUrl(config: Pick<Config, "httpListen" | "sourceIp" | "hostname">): string {
  const { host, port } = config.httpListen;
  const wildcard = host === "0.0.0.0" || host === "::" || host === "";
  const address = wildcard ? (config.sourceIp ?? config.hostname) : host;
  return `http://${isIPv6(address) ? `[${address}]` : address}:${port}`;
}
