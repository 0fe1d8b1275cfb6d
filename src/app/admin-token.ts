import { randomBytes } from "node:crypto";
import { hashToken } from "../http/auth.ts";
import type { SettingsStore } from "../queue/settings.ts";

const SETTING = "admin_token_sha256";

/**
 * The admin token, kept only as a hash: of RELAY_ADMIN_TOKEN when it is set,
 * else of one made at first start, printed once and stored (it stays the
 * same across restarts until `relay admin-token reset` replaces it).
 */
export class AdminToken {
  private constructor(
    private current: string,
    private readonly settings: Pick<SettingsStore, "getSetting">,
    private readonly configured: boolean,
  ) {}

  static async open(
    configured: string | undefined,
    settings: Pick<SettingsStore, "getSetting" | "setSetting">,
    announce: (line: string) => void,
  ): Promise<AdminToken> {
    if (configured) return new AdminToken(hashToken(configured), settings, true);
    const stored = await settings.getSetting(SETTING);
    if (stored) return new AdminToken(stored, settings, false);
    const token = await resetAdminToken(settings);
    announce(`relay: generated admin token (shown once, stored hashed): ${token}`);
    return new AdminToken(hashToken(token), settings, false);
  }

  hash(): string {
    return this.current;
  }

  /** Take up a token `relay admin-token reset` stored while the node serves; the configured one never changes. */
  async refresh(): Promise<void> {
    if (this.configured) return;
    this.current = (await this.settings.getSetting(SETTING)) ?? this.current;
  }
}

/** Make a new admin token and store its hash in place of the old one; the token itself is returned, never stored. */
export async function resetAdminToken(settings: Pick<SettingsStore, "setSetting">): Promise<string> {
  const token = randomBytes(24).toString("base64url");
  await settings.setSetting(SETTING, hashToken(token));
  return token;
}
