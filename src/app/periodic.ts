import type { TimerClock } from "../core/clock.ts";
import { errorText, type Logger } from "../core/log.ts";

/** The timer a periodic job waits on: the relay's clock; tests give a fake one. */
export type Timers = Pick<TimerClock, "setTimeout" | "clearTimeout">;

export interface PeriodicJob {
  /** What the job does, e.g. "purging finished messages": a failed run is logged as "<name> failed". */
  readonly name: string;
  /** The pause between the end of one run and the start of the next. */
  readonly everyMs: number;
  /** Run once at start as well, e.g. to catch up on what the last run of the relay left. */
  readonly atStart?: boolean;
  run(): Promise<unknown>;
}

export interface RunningJob {
  /** No more runs; resolves once a run in progress has ended. */
  stop(): Promise<void>;
}

/**
 * Run `job` until stopped. The next run is timed from the end of the last
 * one, so two runs of a job never overlap however long one takes. A run that
 * fails is logged, the same way for every job, and the job goes on.
 */
export function startPeriodic(job: PeriodicJob, log: Logger, timers: Timers): RunningJob {
  let stopped = false;
  let timer: unknown;
  let running: Promise<void> | undefined;

  const runOnce = async () => {
    try {
      await job.run();
    } catch (error) {
      log("warn", `${job.name} failed`, { job: job.name, error: errorText(error) });
    }
  };
  const schedule = (ms: number) => {
    timer = timers.setTimeout(() => {
      timer = undefined;
      running = runOnce().finally(() => {
        running = undefined;
        if (!stopped) schedule(job.everyMs);
      });
    }, ms);
  };

  schedule(job.atStart ? 0 : job.everyMs);
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
