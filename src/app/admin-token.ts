import { randomBytes } from "node:crypto";
import { hashToken } from "../http/auth.ts";
import type { QueueStore } from "../queue/store.ts";

/**
 * The admin token's hash: of the configured token, or of one made at first
 * start, printed once and kept only as a hash.
 */
export async function adminTokenHash(
  configured: string | undefined,
  store: Pick<QueueStore, "getSetting" | "setSetting">,
  announce: (line: string) => void,
): Promise<string> {
  if (configured) return hashToken(configured);
  const stored = await store.getSetting("admin_token_sha256");
  if (stored) return stored;
  const token = randomBytes(24).toString("base64url");
  const hash = hashToken(token);
  await store.setSetting("admin_token_sha256", hash);
  announce(`relay: generated admin token (shown once, stored hashed): ${token}`);
  return hash;
}
