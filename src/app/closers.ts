import { errorText, type Logger } from "../core/log.ts";

/**
 * What a start has opened, closed in reverse order: at stop, and when a
 * later step of the start fails. Each close is guarded: one that fails is
 * logged and the others still run, so the database is closed and the data
 * directory's lock released whatever failed before them.
 */
export class Closers {
  readonly #stack: { readonly what: string; readonly close: () => unknown }[] = [];

  constructor(private readonly log: Logger) {}

  /** `close` will run after everything added later has been closed. */
  add(what: string, close: () => unknown): void {
    this.#stack.push({ what, close });
  }

  /** Close everything, the last added first; resolves true when every close succeeded. Never rejects. */
  async closeAll(): Promise<boolean> {
    let clean = true;
    for (let entry = this.#stack.pop(); entry !== undefined; entry = this.#stack.pop()) {
      try {
        this.log("debug", `closing ${entry.what}`); // a close that hangs is the last one named
        await entry.close();
      } catch (error) {
        clean = false;
        this.log("error", `closing ${entry.what} failed`, { error: errorText(error) });
      }
    }
    return clean;
  }
}
