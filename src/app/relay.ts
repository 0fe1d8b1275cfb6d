import type { Config } from "../config/load.ts";
import type { Logger } from "../core/log.ts";
import type { Runtime } from "../platform/runtime.ts";
import { Closers } from "./closers.ts";
import { startJobs } from "./jobs.ts";
import { startListeners } from "./listeners.ts";
import { openServeServices } from "./serve-services.ts";

export interface RunningRelay {
  readonly smtpPorts: readonly number[];
  readonly smtpsPorts: readonly number[];
  readonly httpPort: number;
  /**
   * SIGTERM: stop accepting, let deliveries finish (or release them), close
   * the database, release the data directory. Never rejects: a close that
   * fails is logged, the rest still happen, and the result is false.
   */
  stop(): Promise<boolean>;
}

/**
 * `relay serve`, composed of three steps: build the services, open the
 * listeners, start the jobs. Each adds what it opens to one stack of
 * closers, run in reverse at stop, or as soon as a step fails: a failed
 * start leaves nothing open (the error is rethrown for the caller to report).
 */
export async function startRelay(
  config: Config,
  runtime: Runtime,
  version: string,
  log: Logger,
): Promise<RunningRelay> {
  const closers = new Closers(log);
  try {
    const services = await openServeServices(config, runtime, version, log, closers);
    let accepting = false;
    const ready = async () => accepting && (await services.store.answers());
    const listeners = await startListeners(config, services, { runtime, version, ready }, closers);
    await startJobs(config, services, closers);
    accepting = true;
    closers.add("acceptance of new connections", () => {
      accepting = false;
      return listeners.stopAccepting();
    });
    log("info", "relay started", {
      smtp: listeners.smtpPorts,
      smtps: listeners.smtpsPorts,
      http: listeners.httpPort,
      node: config.nodeId,
      tls: services.certificates.info().origin,
      runtime: `${runtime.name} ${runtime.version}`,
    });
    return {
      smtpPorts: listeners.smtpPorts,
      smtpsPorts: listeners.smtpsPorts,
      httpPort: listeners.httpPort,
      async stop() {
        const clean = await closers.closeAll();
        log("info", "relay stopped");
        return clean;
      },
    };
  } catch (error) {
    await closers.closeAll();
    throw error;
  }
}
