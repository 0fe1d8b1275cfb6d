import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../core/clock.ts";
import type { Principal } from "../http/auth.ts";

/** One signed-in operator: who, the token their forms carry, and until when. */
export interface Session {
  readonly id: string;
  readonly principal: Principal;
  /** The per-session CSRF token every state-changing form sends back. */
  readonly csrf: string;
  /** The session ends at the first of these: no request for the idle time, or its whole life. */
  idleUntil: number;
  readonly expiresAt: number;
  /** What the last action did, shown once on the next page (post/redirect/get). */
  flash?: { readonly text: string; readonly error: boolean };
}

export interface SessionLimits {
  /** Ends after this long without a request. */
  readonly idleMs: number;
  /** Ends this long after login, however active. */
  readonly lifetimeMs: number;
  /** At most this many live at once; a login beyond that ends the oldest (memory stays bounded). */
  readonly max: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  idleMs: 60 * 60_000,
  lifetimeMs: 12 * 60 * 60_000,
  max: 10_000,
};

/** 256 random bits, URL-safe: a session id or a CSRF token that cannot be guessed. */
const secret = () => randomBytes(32).toString("base64url");

/**
 * The dashboard's sessions, held in memory on the server: the browser keeps
 * only a random id (the cookie), never the admin token or API key it logged
 * in with. A restart ends every session.
 */
export class SessionStore {
  /** In creation order, so the oldest is the first. */
  readonly #sessions = new Map<string, Session>();

  constructor(private readonly clock: Clock, private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS) {}

  create(principal: Principal): Session {
    const now = this.clock.now();
    this.#dropExpired(now);
    while (this.#sessions.size >= this.limits.max) {
      this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    const session: Session = {
      id: secret(),
      principal,
      csrf: secret(),
      idleUntil: now + this.limits.idleMs,
      expiresAt: now + this.limits.lifetimeMs,
    };
    this.#sessions.set(session.id, session);
    return session;
  }

  /** The live session with this id, its idle time renewed; undefined for an unknown or ended one. */
  get(id: string | undefined): Session | undefined {
    if (id === undefined) return undefined;
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    const now = this.clock.now();
    if (now >= session.idleUntil || now >= session.expiresAt) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.idleUntil = now + this.limits.idleMs;
    return session;
  }

  end(id: string): void {
    this.#sessions.delete(id);
  }

  get size(): number {
    return this.#sessions.size;
  }

  #dropExpired(now: number): void {
    for (const [id, session] of this.#sessions) {
      if (now >= session.idleUntil || now >= session.expiresAt) this.#sessions.delete(id);
    }
  }
}

/** Whether a form's CSRF token is the session's own; the comparison takes the same time whatever the guess. */
export function csrfMatches(session: Session, presented: unknown): boolean {
  if (typeof presented !== "string") return false;
  const expected = Buffer.from(session.csrf);
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
