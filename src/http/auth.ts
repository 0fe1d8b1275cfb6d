import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { problem } from "./problem.ts";

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Bearer authentication against the stored hash of the admin token; the
 * comparison takes the same time whatever the guess.
 */
export function requireBearer(adminTokenHash: () => string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      c.header("www-authenticate", 'Bearer realm="relay"');
      return problem(c, 401, "Unauthorized", "send Authorization: Bearer <admin token or API key>");
    }
    const presented = Buffer.from(hashToken(match[1]!), "hex");
    const expected = Buffer.from(adminTokenHash(), "hex");
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      c.header("www-authenticate", 'Bearer realm="relay", error="invalid_token"');
      return problem(c, 401, "Unauthorized", "the bearer token is not valid");
    }
    await next();
  };
}
