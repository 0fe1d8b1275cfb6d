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
