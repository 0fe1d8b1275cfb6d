import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Client, createClient } from "@libsql/client";
import { systemClock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import { type Database, databaseFilePath, openDatabase } from "./database.ts";
import { applyMigrations, NewerSchemaError, type SchemaState, schemaState } from "./migrate.ts";
import { type MigrationFile, migrationFiles } from "./migration-files.ts";
import { backUpBeforeMigrating } from "./upgrade-backup.ts";
import { WorkerClient } from "./worker-client.ts";

export interface OpenQueueOptions {
  /** This binary's version: recorded with the migrations it applies, named when it refuses a newer schema. */
  readonly version: string;
  readonly log: Logger;
  /** The spool beside a database file: backed up with it before a migration. */
  readonly spoolDir?: string;
  /** The migrations to bring the schema to; the binary's own unless a test gives others. */
  readonly files?: readonly MigrationFile[];
}

/**
 * Open the node's database and bring its schema up to date; used by serve
 * and every CLI command. A database a newer relay migrated is refused
 * (NewerSchemaError) before it is opened for writing. Before migrating a
 * database file that has a schema, it and its spool are backed up
 * (upgrade-backup.ts): the migrations are one transaction, so a failed
 * upgrade leaves the database as it was anyway; the backup is what lets
 * the older binary run again after a successful one.
 */
export async function openQueue(
  dbUrl: string,
  { version, log, spoolDir, files = migrationFiles() }: OpenQueueOptions,
): Promise<{ database: Database; applied: string[] }> {
  await refuseNewerSchema(dbUrl, version, files);
  const database = await openDatabase(dbUrl);
  try {
    // Asked again on the open database: what a newer relay did since the look above is refused here, before any write.
    const state = await schemaState(database.client, files);
    if (state.unknown.length > 0) throw new NewerSchemaError(state, version, dbUrl);
    const path = databaseFile(dbUrl);
    if (path !== undefined && state.applied.length > 0 && state.pending.length > 0) {
      const schema = state.applied.at(-1)!;
      const backup = await backUpBeforeMigrating(database.client, path, spoolDir, schema).catch((error) => {
        const why = error instanceof Error ? error.message : String(error);
        throw new Error(`cannot back up ${path} before migrating it (${why}); nothing was migrated`);
      });
      log("info", "data directory backed up before migrating: restore it to run the previous relay again", {
        ...backup,
        schema,
        pending: state.pending,
      });
    }
    const applied = await applyMigrations(database.client, files, systemClock.now(), version);
    if (applied.length > 0) log("info", "database migrated", { applied, version });
    return { database, applied };
  } catch (error) {
    await database.close();
    throw error;
  }
}

/**
 * Refuse (NewerSchemaError) a database file a newer relay migrated, without
 * changing anything in the data directory: serve asks this before it takes
 * the data directory's lock. A libSQL server is checked once opened, before
 * any write.
 */
export async function refuseNewerSchema(
  dbUrl: string,
  version: string,
  files: readonly MigrationFile[] = migrationFiles(),
): Promise<void> {
  if (databaseFile(dbUrl) === undefined) return;
  const state = await readSchemaState(dbUrl, files);
  if (state !== undefined && state.unknown.length > 0) throw new NewerSchemaError(state, version, dbUrl);
}

/**
 * The schema state of the database at `dbUrl` (migrate.ts), read without
 * writing anything; undefined when its file does not exist yet. A file is
 * read as immutable when its write-ahead log is absent or empty, as a relay
 * leaves it when it stops (a read-only connection would create or rewrite
 * the -wal and -shm files); read-only when the log holds rows (a relay
 * runs, or was killed): SQLite may then rebuild its -shm index, never change
 * the database or the log. A libSQL server is asked over the network.
 */
export async function readSchemaState(
  dbUrl: string,
  files: readonly MigrationFile[],
): Promise<SchemaState | undefined> {
  const path = databaseFile(dbUrl);
  if (path !== undefined && !existsSync(path)) return undefined;
  const client = path === undefined ? createClient({ url: dbUrl }) : await WorkerClient.open(
    `${pathToFileURL(resolve(path)).href}?${walHoldsFrames(path) ? "mode=ro" : "immutable=1"}`,
    [],
    true,
  );
  try {
    return await schemaState(client as unknown as Client, files);
  } finally {
    await client.close();
  }
}

/** Whether committed rows may be in the write-ahead log: a relay runs, or one stopped without closing. */
function walHoldsFrames(path: string): boolean {
  try {
    return statSync(`${path}-wal`).size > 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/** The path of a database file; undefined for a libSQL server or an in-memory database. */
function databaseFile(dbUrl: string): string | undefined {
  const path = databaseFilePath(dbUrl);
  return path === ":memory:" ? undefined : path;
}
