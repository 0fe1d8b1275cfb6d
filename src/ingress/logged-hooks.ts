import type { Logger } from "../events/log.ts";
import type { SmtpServerHooks } from "../smtp/server/index.ts";

/**
 * The SMTP server answers a failing hook with 451 and never shows the error
 * to the client (it may hold secrets); this makes sure the operator sees it.
 */
export function loggedHooks(hooks: SmtpServerHooks, log: Logger): SmtpServerHooks {
  const wrapped: Record<string, unknown> = {};
  for (const [name, hook] of Object.entries(hooks) as [string, (...args: unknown[]) => Promise<unknown>][]) {
    const logged = (error: unknown): unknown => {
      log("error", `SMTP ${name} failed`, { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      return error;
    };
    const rethrow = (error: unknown): never => {
      throw logged(error);
    };
    // The hook's own promise, with the log on its rejection: no async wrapper and its extra promise per call.
    wrapped[name] = (...args: unknown[]) => {
      try {
        return hook(...args).then(undefined, rethrow);
      } catch (error) {
        return Promise.reject(logged(error));
      }
    };
  }
  return wrapped as unknown as SmtpServerHooks;
}
