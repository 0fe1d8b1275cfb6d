import type { SessionInfo } from "../../src/smtp/server/index.ts";

/**
 * `onError` for SMTP servers under test: a fault inside a session (which the
 * client sees only as 421 4.3.0) is thrown as an uncaught error, which fails
 * the test run, under bun test and deno test alike.
 */
export function failOnSessionError(error: unknown, session: SessionInfo): void {
  queueMicrotask(() => {
    throw new Error(`SMTP session ${session.id} failed unexpectedly`, { cause: error });
  });
}
