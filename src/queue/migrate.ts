import type { Client } from "@libsql/client";
import type { MigrationFile } from "./migration-files.ts";

/**
 * Apply the migrations not yet recorded, in journal order, all in one
 * transaction, recording with each the relay version that applied it.
 * Returns the tags applied. One transaction for the whole set, rather than
 * one per migration: a set that fails half-way (a migration that does not
 * fit the data, a full disk, a kill) leaves the database exactly at the
 * schema it had, which the binary that wrote it still runs on; one per
 * migration would leave it at a schema between two releases, which no
 * binary was ever built for. SQLite's DDL is transactional, and none of the
 * migrations needs a statement a transaction forbids (PRAGMA foreign_keys,
 * VACUUM). A database a newer relay migrated (tags this binary does not
 * carry) is refused before anything is written: NewerSchemaError.
 */
export async function applyMigrations(
  client: Pick<Client, "execute" | "batch">,
  files: readonly MigrationFile[],
  now: number,
  relayVersion?: string,
): Promise<string[]> {
  const state = await schemaState(client, files);
  if (state.unknown.length > 0) throw new NewerSchemaError(state, relayVersion);
  const pending = files.filter((f) => state.pending.includes(f.tag));
  if (pending.length === 0) return [];
  const columns = await migrationColumns(client);
  const bookkeeping = columns.length === 0
    ? [
      "CREATE TABLE relay_migrations (tag TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL, relay_version TEXT)",
    ]
    : columns.includes("relay_version")
    ? []
    // Written by a relay from before versions were recorded: its rows keep NULL.
    : ["ALTER TABLE relay_migrations ADD COLUMN relay_version TEXT"];
  const statements = pending.flatMap((file) => [
    ...file.sql
      .split("--> statement-breakpoint")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
    {
      sql: "INSERT INTO relay_migrations (tag, applied_at, relay_version) VALUES (?, ?, ?)",
      args: [file.tag, now, relayVersion ?? null],
    },
  ]);
  await client.batch([...bookkeeping, ...statements], "write");
  return pending.map((f) => f.tag);
}

/**
 * A database migrated by a newer relay: this binary does not know its
 * schema, so it must not run on it, nor change it (SPEC.md, exit 1).
 */
export class NewerSchemaError extends Error {
  constructor(
    readonly state: SchemaState,
    readonly binaryVersion: string | undefined,
    database = "the database",
  ) {
    const newer = state.lastVersion === undefined
      ? "a newer relay (its version was not recorded)"
      : `relay ${state.lastVersion}`;
    const tags = `migration${state.unknown.length > 1 ? "s" : ""} ${state.unknown.join(", ")}`;
    super(
      `${database} was migrated by ${newer}; this relay ${binaryVersion ?? "(version unknown)"} does not know ` +
        `its ${tags}, so it does not use it and changed nothing. Run ${
          state.lastVersion === undefined ? "that relay" : `relay ${state.lastVersion}`
        } or newer, or restore the backup taken before the upgrade (docs/upgrading.md)`,
    );
    this.name = "NewerSchemaError";
  }
}

/** The columns of relay_migrations; none when the table does not exist. */
async function migrationColumns(client: Pick<Client, "execute">): Promise<string[]> {
  return (await client.execute("PRAGMA table_info(relay_migrations)")).rows.map((r) => String(r.name));
}

/** A database's schema measured against the migrations a binary carries. */
export interface SchemaState {
  /** Tags recorded in relay_migrations, in the order they were applied. */
  readonly applied: readonly string[];
  /** Tags this binary carries that the database has not had, in journal order. */
  readonly pending: readonly string[];
  /** Tags the database has had that this binary does not carry: a newer relay migrated it. */
  readonly unknown: readonly string[];
  /**
   * The relay version that applied the last migration; undefined when none
   * was applied or when a relay that did not record versions applied it.
   */
  readonly lastVersion: string | undefined;
}

/**
 * Read the schema state of a database: only SELECTs and PRAGMA table_info,
 * so that it can be asked of a database the caller must not change (one a
 * newer relay migrated, or `relay check`'s). A database with no
 * relay_migrations table has had nothing applied.
 */
export async function schemaState(
  client: Pick<Client, "execute">,
  files: readonly MigrationFile[],
): Promise<SchemaState> {
  const columns = await migrationColumns(client);
  const rows = columns.length === 0 ? [] : (await client.execute(
    `SELECT tag, ${
      columns.includes("relay_version") ? "relay_version" : "NULL AS relay_version"
    } FROM relay_migrations ORDER BY rowid`,
  )).rows;
  const applied = rows.map((r) => String(r.tag));
  const known = new Set(files.map((f) => f.tag));
  const done = new Set(applied);
  const last = rows.at(-1)?.relay_version;
  return {
    applied,
    pending: files.map((f) => f.tag).filter((tag) => !done.has(tag)),
    unknown: applied.filter((tag) => !known.has(tag)),
    lastVersion: last === null || last === undefined ? undefined : String(last),
  };
}
