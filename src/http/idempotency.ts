import { createHash } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import type { AuthEnv } from "./auth.ts";
import { problem } from "./problem.ts";

/** How long an answer is replayed for the same Idempotency-Key. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;

export interface StoredAnswer {
  readonly requestHash: string;
  readonly status: number;
  readonly response: string;
}

/** Where answers are kept; `CredentialStore` from src/queue/credentials.ts fits. */
export interface IdempotencyStore {
  findResponse(owner: string, key: string, maxAgeMs: number): Promise<StoredAnswer | undefined>;
  storeResponse(owner: string, key: string, value: StoredAnswer): Promise<void>;
}

/** 1-255 printable ASCII characters (space included). */
export const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;

/** The canonical request: method, path and the exact body bytes. */
export function requestHash(method: string, path: string, body: Uint8Array): string {
  return createHash("sha256").update(`${method.toUpperCase()} ${path}\n`).update(body).digest("hex");
}

/** Runs work one at a time per key, in arrival order; keys with nothing pending take no memory. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  get size(): number {
    return this.tails.size;
  }
}

/**
 * Idempotency-Key for one route: the same key from the same principal with
 * the same request within 24 hours gets the first answer again (with
 * `Idempotency-Replayed: true`) and does nothing; with a different request,
 * 409. Only successful (2xx) answers are kept, so a request that failed can
 * be corrected and retried under the same key. Requests with one key run one
 * at a time in this process, so concurrent duplicates cannot both act.
 * Pruning old records is the caller's job (CredentialStore.pruneResponses).
 */
export function idempotency(
  store: IdempotencyStore,
  onError: (error: unknown, c: Context<AuthEnv>) => void,
): MiddlewareHandler<AuthEnv> {
  const lock = new KeyedLock();
  return async (c, next) => {
    const key = c.req.header("idempotency-key");
    if (key === undefined) return next();
    if (!IDEMPOTENCY_KEY.test(key)) {
      return problem(c, 400, "Bad Request", "Idempotency-Key must be 1-255 printable ASCII characters", [
        { field: "Idempotency-Key", message: "expected 1-255 printable ASCII characters" },
      ]);
    }
    const owner = c.get("principal").id;
    const body = new Uint8Array(await c.req.arrayBuffer());
    const hash = requestHash(c.req.method, c.req.path, body);
    return lock.run(`${owner}\0${key}`, async () => {
      const stored = await store.findResponse(owner, key, IDEMPOTENCY_WINDOW_MS);
      if (stored) {
        if (stored.requestHash !== hash) {
          return problem(
            c,
            409,
            "Conflict",
            "this Idempotency-Key was used with a different request in the last 24 hours; use a new key for a new request",
          );
        }
        return new Response(stored.response, {
          status: stored.status,
          headers: { "content-type": "application/json", "idempotency-replayed": "true" },
        });
      }
      await next();
      const status = c.res.status;
      if (status >= 200 && status < 300) {
        try {
          const response = await c.res.clone().text();
          await store.storeResponse(owner, key, { requestHash: hash, status, response });
        } catch (error) {
          // The request took effect; answering with an error would invite a
          // retry that does it twice. Report it and answer as if kept.
          onError(error, c);
        }
      }
      return c.res;
    });
  };
}
