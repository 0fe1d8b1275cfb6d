import type { Client } from "@libsql/client";
import type { MigrationFile } from "./migration-files.ts";

/**
 * Apply the migrations not yet recorded, each in its own transaction, in
 * journal order. Returns the tags applied.
 */
export async function applyMigrations(client: Client, files: readonly MigrationFile[], now: number): Promise<string[]> {
  await client.execute(
    "CREATE TABLE IF NOT EXISTS relay_migrations (tag TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)",
  );
  const done = new Set((await client.execute("SELECT tag FROM relay_migrations")).rows.map((r) => String(r.tag)));
  const applied: string[] = [];
  for (const file of files) {
    if (done.has(file.tag)) continue;
    const statements = file.sql
      .split("--> statement-breakpoint")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    await client.batch(
      [...statements, { sql: "INSERT INTO relay_migrations (tag, applied_at) VALUES (?, ?)", args: [file.tag, now] }],
      "write",
    );
    applied.push(file.tag);
  }
  return applied;
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
  const columns = (await client.execute("PRAGMA table_info(relay_migrations)")).rows.map((r) => String(r.name));
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
