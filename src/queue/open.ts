import { systemClock } from "../core/clock.ts";
import { type Database, openDatabase } from "./database.ts";
import { applyMigrations } from "./migrate.ts";
import { migrationFiles } from "./migration-files.ts";

/** Open the node's database and bring its schema up to date; used by serve and every CLI command. */
export async function openQueue(dbUrl: string): Promise<{ database: Database; applied: string[] }> {
  const database = await openDatabase(dbUrl);
  const applied = await applyMigrations(database.client, migrationFiles(), systemClock.now());
  return { database, applied };
}
