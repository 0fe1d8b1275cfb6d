import { systemClock } from "../core/clock.ts";
import type { Config } from "../config/load.ts";
import { openDatabase, type Database } from "./database.ts";
import { applyMigrations } from "./migrate.ts";
import { migrationFiles } from "./migration-files.ts";

/** Open the node's database and bring its schema up to date; used by serve and every CLI command. */
export async function openQueue(config: Config): Promise<{ database: Database; applied: string[] }> {
  const database = await openDatabase(config.dbUrl);
  const applied = await applyMigrations(database.client, migrationFiles(), systemClock.now());
  return { database, applied };
}
