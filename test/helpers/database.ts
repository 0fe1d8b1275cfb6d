import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations } from "../../src/queue/migrate.ts";
import { type MigrationFile, migrationFiles } from "../../src/queue/migration-files.ts";

/** A libSQL file (`relay.db`) in a temporary directory of its own, which the test may use for more files. */
export interface TemporaryDatabase {
  readonly database: Database;
  readonly dir: string;
}

/**
 * Opens databases for the tests of a file or describe block: call it at that
 * level, where it registers the `after` hook that closes every database it
 * opened and removes its directory. Each database has the migrations applied
 * at `now`: all of them, or only `files`.
 */
export function temporaryDatabases(
  prefix: string,
): (now: number, files?: readonly MigrationFile[]) => Promise<TemporaryDatabase> {
  const opened: TemporaryDatabase[] = [];
  after(async () => {
    for (const { database } of opened) await database.close();
    for (const { dir } of opened) rmSync(dir, { recursive: true, force: true });
  });
  return async (now, files = migrationFiles()) => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const database = await openDatabase(`file:${join(dir, "relay.db")}`);
    opened.push({ database, dir });
    await applyMigrations(database.client, files, now);
    return { database, dir };
  };
}
