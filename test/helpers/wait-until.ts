/**
 * Waiting for something that happens elsewhere (another process, a worker
 * thread, the network) by looking at it until it holds:
 *
 *   const got = await waitUntil(() => totals("a.test"), (t) => t.ok >= 2, { what: "two reported sessions" });
 *
 * The timeout is a safety net, not a threshold: it only turns a hang into an
 * error that says what never happened and what was seen last.
 */
export interface WaitOptions {
  /** What is awaited, for the error. */
  readonly what: string;
  /** Milliseconds before giving up. */
  readonly timeout?: number;
  /** Milliseconds between looks. */
  readonly every?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_EVERY_MS = 10;

/** Look at `observe` until `done` holds for what it returns, and return that. An error `observe` throws ends the wait at once. */
export async function waitUntil<T>(
  observe: () => T | Promise<T>,
  done: (value: T) => boolean,
  options: WaitOptions,
): Promise<T> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await observe();
    if (done(value)) return value;
    if (Date.now() >= deadline) {
      throw new Error(`waited ${timeout} ms for ${options.what}; last seen: ${describe(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.every ?? DEFAULT_EVERY_MS));
  }
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
