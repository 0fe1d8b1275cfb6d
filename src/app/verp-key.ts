import { randomBytes } from "node:crypto";
import type { VerpKey } from "../core/verp.ts";
import type { SettingsStore } from "../queue/settings.ts";

const SETTING = "verp_key";

/**
 * The key VERP tags are made and checked with (core/verp.ts): made at first
 * start and kept in the settings table rather than the private data
 * directory, because it must travel with the queue it names: a backup
 * restored elsewhere, or a fleet sharing one database, still verifies the
 * bounces to mail it sent. It is as secret as the database itself.
 */
export async function verpKey(store: Pick<SettingsStore, "getSetting" | "setSetting">): Promise<VerpKey> {
  const stored = await store.getSetting(SETTING);
  if (stored) return new Uint8Array(Buffer.from(stored, "base64url"));
  const key = randomBytes(32);
  await store.setSetting(SETTING, key.toString("base64url"));
  return new Uint8Array(key);
}
