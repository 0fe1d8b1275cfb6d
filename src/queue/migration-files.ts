import { readFileSync } from "node:fs";

export interface MigrationFile {
  readonly tag: string;
  readonly sql: string;
}

/**
 * The drizzle-kit migrations, read from `migrations/` beside the source.
 * `scripts/build` replaces this module with one that carries the same files
 * inline, so the compiled binary needs no folder on disk.
 */
export function migrationFiles(): MigrationFile[] {
  const folder = new URL("../../migrations/", import.meta.url);
  const journal = JSON.parse(readFileSync(new URL("meta/_journal.json", folder), "utf8")) as {
    entries: { tag: string }[];
  };
  return journal.entries.map(({ tag }) => ({ tag, sql: readFileSync(new URL(`${tag}.sql`, folder), "utf8") }));
}
