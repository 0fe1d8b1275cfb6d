import { eq } from "drizzle-orm";
import type { Database } from "./database.ts";
import { settings } from "./schema.ts";

/** The node's small named values (the admin token's hash, the VERP key, the shaping rules a PUT set, ...). */
export class SettingsStore {
  constructor(private readonly database: Database) {}

  async getSetting(key: string): Promise<string | undefined> {
    const [row] = await this.database.db.select().from(settings).where(eq(settings.key, key));
    return row?.value;
  }

  async deleteSetting(key: string): Promise<void> {
    await this.database.db.delete(settings).where(eq(settings.key, key));
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.database.db.insert(settings).values({ key, value }).onConflictDoUpdate({
      target: settings.key,
      set: { value },
    });
  }
}
