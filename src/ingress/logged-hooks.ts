import { errorText, type Logger } from "../core/log.ts";
import type { SessionInfo, SmtpServerHooks } from "../smtp/server/index.ts";

/**
 * The SMTP server answers a failing hook with 451 and never shows the error
 * to the client (it may hold secrets); this makes sure the operator sees it,
 * with the session's id (every hook gets the SessionInfo first).
 */
export function loggedHooks(hooks: SmtpServerHooks, log: Logger): SmtpServerHooks {
  const wrapped: Record<string, unknown> = {};
  for (const [name, hook] of Object.entries(hooks) as [string, (...args: unknown[]) => Promise<unknown>][]) {
    const logged = (session: unknown, error: unknown): unknown => {
      log("error", `SMTP ${name} failed`, {
        session: (session as SessionInfo | undefined)?.id,
        error: errorText(error),
      });
      return error;
    };
    // The hook's own promise, with the log on its rejection: no async wrapper and its extra promise per call.
    wrapped[name] = (...args: unknown[]) => {
      try {
        return hook(...args).then(undefined, (error: unknown) => {
          throw logged(args[0], error);
        });
      } catch (error) {
        return Promise.reject(logged(args[0], error));
      }
    };
  }
  return wrapped as unknown as SmtpServerHooks;
}

/** The SMTP server's `onError`: a fault inside a session (answered 421), logged with the session's id. */
export function loggedSessionError(log: Logger): (error: unknown, session: SessionInfo) => void {
  return (error, session) =>
    log("error", "SMTP session failed", {
      session: session.id,
      remote: session.remoteAddress,
      error: errorText(error),
    });
}
