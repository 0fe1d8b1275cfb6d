import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { DEFAULT_LANE, type Lane } from "../core/lane.ts";
import type { ScanSetting } from "../core/scan-setting.ts";
import { problem } from "./problem.ts";

export type Scope = "send" | "read" | "admin";

/** Who is calling: the admin token or one API key. */
export interface Principal {
  /** "admin" or the API key id; also the owner of idempotency records. */
  readonly id: string;
  /** `admin` implies every other scope. */
  readonly scopes: readonly Scope[];
  /** Sender domains allowed; empty = any. */
  readonly domains: readonly string[];
  /** The priority lane of its mail when a request names none (`relay keys create --priority`). */
  readonly lane: Lane;
  /** Content scanning of its mail (`relay keys create --scan`); null: as RELAY_MILTER_SCOPE says. */
  readonly scan: ScanSetting;
}

/** The principal a bearer token stands for, or undefined for an unknown token. */
export type Authenticator = (token: string) => Promise<Principal | undefined>;

/** Hono variables set by `requireBearer`. */
export interface AuthEnv {
  /** requestId: this request's id, sent back as X-Request-Id and named in the log (src/http/app.ts). */
  Variables: { principal: Principal; requestId: string };
}

export const ADMIN_PRINCIPAL: Principal = Object.freeze({
  id: "admin",
  scopes: Object.freeze(["admin"] as const),
  domains: Object.freeze([]),
  lane: DEFAULT_LANE,
  scan: null,
});

/** Commands on the node's own machine (`relay queue`), with the token of its data directory (app/control-file.ts). */
export const LOCAL_CLI_PRINCIPAL: Principal = Object.freeze({
  id: "local-cli",
  scopes: Object.freeze(["admin"] as const),
  domains: Object.freeze([]),
  lane: DEFAULT_LANE,
  scan: null,
});

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * The admin token (or another token that stands for `principal`), checked
 * against its stored SHA-256 (hex); the comparison takes the same time
 * whatever the guess.
 */
export function adminAuthenticator(adminTokenHash: () => string, principal = ADMIN_PRINCIPAL): Authenticator {
  return async (token) => {
    const presented = Buffer.from(hashToken(token), "hex");
    const expected = Buffer.from(adminTokenHash(), "hex");
    const equal = presented.length === expected.length && timingSafeEqual(presented, expected);
    return equal ? principal : undefined;
  };
}

/** The fields of a stored API key an authenticator needs (CredentialStore's ApiKeyRecord fits). */
export interface ApiKeyLike {
  readonly id: string;
  readonly scopes: readonly string[];
  readonly domains: readonly string[];
  readonly lane: Lane;
  readonly scan: ScanSetting;
}

/**
 * API keys looked up by the SHA-256 (hex, `hashToken`) of the secret, e.g.
 * `(hash) => credentials.findApiKey(hash)`, which returns live keys only.
 * The lookup is by a hash of a high-entropy secret, so its timing tells nothing.
 */
export function apiKeyAuthenticator(
  findBySecretHash: (secretHash: string) => Promise<ApiKeyLike | undefined>,
): Authenticator {
  return async (token) => {
    const key = await findBySecretHash(hashToken(token));
    if (!key) return undefined;
    const scopes = key.scopes.filter((s): s is Scope => s === "send" || s === "read" || s === "admin");
    return { id: key.id, scopes, domains: key.domains.map((d) => d.toLowerCase()), lane: key.lane, scan: key.scan };
  };
}

/** The first authenticator that knows the token wins. */
export function anyAuthenticator(...authenticators: Authenticator[]): Authenticator {
  return async (token) => {
    for (const authenticate of authenticators) {
      const principal = await authenticate(token);
      if (principal) return principal;
    }
    return undefined;
  };
}

export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.includes("admin") || principal.scopes.includes(scope);
}

/**
 * The scope a route under /v1 needs: sending and cancelling need `send`,
 * reading messages, events and metrics `read`, everything else (queue, suppressions,
 * domains, webhooks, keys) `admin`.
 */
export function scopeFor(method: string, path: string): Scope {
  const m = method.toUpperCase();
  const p = path.replace(/\/+$/, "");
  if (p === "/v1/messages" && m === "POST") return "send";
  if (/^\/v1\/messages\/[^/]+$/.test(p) && m === "DELETE") return "send";
  if ((p === "/v1/messages" || /^\/v1\/messages\/[^/]+$/.test(p)) && (m === "GET" || m === "HEAD")) return "read";
  if (p === "/v1/events" && (m === "GET" || m === "HEAD")) return "read";
  if (p === "/metrics" && (m === "GET" || m === "HEAD")) return "read";
  return "admin";
}

/** May this principal send with this envelope sender? "" (null sender) has no domain. */
export function senderAllowed(principal: Principal, mailFrom: string): boolean {
  if (principal.domains.length === 0) return true;
  const at = mailFrom.lastIndexOf("@");
  if (at < 0) return false;
  const domain = mailFrom.slice(at + 1).toLowerCase();
  return principal.domains.some((d) => d.toLowerCase() === domain);
}

/**
 * Bearer authentication and per-route scopes: 401 (with WWW-Authenticate) for
 * a missing or unknown token, 403 for a token without the route's scope.
 */
export function requireBearer(authenticate: Authenticator): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      c.header("www-authenticate", 'Bearer realm="relay"');
      return problem(c, 401, "Unauthorized", "send Authorization: Bearer <admin token or API key>");
    }
    const principal = await authenticate(match[1]!);
    if (!principal) {
      c.header("www-authenticate", 'Bearer realm="relay", error="invalid_token"');
      return problem(c, 401, "Unauthorized", "the bearer token is not valid");
    }
    const scope = scopeFor(c.req.method, c.req.path);
    if (!hasScope(principal, scope)) {
      c.header("www-authenticate", `Bearer realm="relay", error="insufficient_scope", scope="${scope}"`);
      return problem(c, 403, "Forbidden", `this route needs the "${scope}" scope`);
    }
    c.set("principal", principal);
    await next();
  };
}
