import type { Config } from "../config/load.ts";
import { purgeFinished } from "../queue/retention.ts";
import { SpoolCollector } from "../queue/spool-collector.ts";
import type { Closers } from "./closers.ts";
import { fleetJobs } from "./fleet.ts";
import { type PeriodicJob, startPeriodic } from "./periodic.ts";
import type { ServeServices } from "./serve-services.ts";
import { writeWarmup, writeWarmupJob } from "./warmup.ts";

/** Grace for in-flight deliveries at shutdown; what is not done by then is released, not lost. */
const SHUTDOWN_GRACE_MS = 10_000;
/** Idempotency-Key answers are replayed for 24 hours, then forgotten. */
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const PRUNE_IDEMPOTENCY_EVERY_MS = 3_600_000;
/** How soon a token `relay admin-token reset` stored replaces the one in force. */
const ADMIN_TOKEN_REFRESH_MS = 2_000;
/** How soon shaping rules another node of the fleet was given apply here too. */
const SHAPING_REFRESH_MS = 5_000;
/** How often finished messages past RELAY_RETENTION are purged. */
const PURGE_EVERY_MS = 3_600_000;
/** How often the spool's unused segments are removed and its sparse ones compacted. */
const SPOOL_COLLECT_EVERY_MS = 60_000;
/** How often the data directory's free space is measured: a full disk is noticed, and its end, within this. */
const FREE_SPACE_EVERY_MS = 2_000;

/** The periodic upkeep of a serving node. */
function periodicJobs(config: Config, services: ServeServices): PeriodicJob[] {
  const { clock, log, store, spool } = services;
  const jobs: PeriodicJob[] = [
    { name: "checking sending domains", everyMs: config.domainCheckInterval, run: () => services.domains.maintain() },
    { name: "reading the admin token", everyMs: ADMIN_TOKEN_REFRESH_MS, run: () => services.adminToken.refresh() },
    { name: "measuring free space", everyMs: FREE_SPACE_EVERY_MS, run: () => services.freeSpace.measure() },
    {
      name: "pruning idempotency keys",
      everyMs: PRUNE_IDEMPOTENCY_EVERY_MS,
      run: () => services.credentials.pruneResponses(IDEMPOTENCY_TTL_MS),
    },
  ];
  if (config.retention > 0) {
    jobs.push({
      name: "purging finished messages",
      everyMs: PURGE_EVERY_MS,
      run: () => purgeFinished(store.retention, clock, config.retention, log),
    });
  }
  if (services.warmup) jobs.push(writeWarmupJob(services.warmup));
  jobs.push(...fleetJobs(services.fleet, services.shared));
  if (services.shared) {
    jobs.push({
      name: "reading the fleet's shaping rules",
      everyMs: SHAPING_REFRESH_MS,
      run: () => services.shaping.refresh(),
    });
  }
  jobs.push(services.eventFeed);
  if (spool) {
    const collector = new SpoolCollector(store.bodies, spool, clock, log);
    // At start too: what a crash or the last run left.
    jobs.push({
      name: "spool collection",
      everyMs: SPOOL_COLLECT_EVERY_MS,
      atStart: true,
      run: () => collector.collect(),
    });
  }
  return jobs;
}

/**
 * Start the node's background work: TLS reporting, warmup's last write, the
 * delivery loop, webhook deliveries, the periodic jobs. Added to `closers` in
 * that order, so a stop ends the jobs, cancels webhook deliveries in flight
 * (sent again after a restart), ends the deliveries (finished within the
 * grace, or released), then writes the warmup state and TLS report counts of
 * the last deliveries.
 */
export async function startJobs(config: Config, services: ServeServices, closers: Closers): Promise<void> {
  const { tlsReporter, delivery, log, clock, warmup, metrics } = services;
  metrics.start();
  closers.add("the event-loop sampler", () => metrics.stop());
  // Closed after the deliveries and the jobs: the registry hears the node stopped once it has.
  closers.add("the node's last heartbeat", () => services.fleet.heartbeat.becomes("stopped"));
  if (tlsReporter) {
    tlsReporter.start();
    closers.add("TLS reporting", () => tlsReporter.stop());
  }
  if (warmup) closers.add("the warmup state", () => writeWarmup(warmup));
  await delivery.start();
  closers.add("the delivery loop", () => delivery.stop(SHUTDOWN_GRACE_MS));
  services.webhookDispatcher.start();
  closers.add("webhook deliveries", () => services.webhookDispatcher.stop());
  for (const job of periodicJobs(config, services)) {
    const running = startPeriodic(job, log, clock);
    closers.add(`the job ${job.name}`, () => running.stop());
  }
}
