import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations, schemaState } from "../../src/queue/migrate.ts";
import { migrationFiles } from "../../src/queue/migration-files.ts";

const T0 = 1_700_000_000_000;
const dirs: string[] = [];
const opened: Database[] = [];
after(async () => {
  for (const d of opened) await d.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function emptyDatabase(): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), "relay-migrate-"));
  dirs.push(dir);
  const database = await openDatabase(`file:${join(dir, "relay.db")}`);
  opened.push(database);
  return database;
}

describe("schemaState", () => {
  const files = migrationFiles();
  const tags = files.map((f) => f.tag);

  it("reports every migration pending on a database that has none", async () => {
    const { client } = await emptyDatabase();
    assert.deepEqual(await schemaState(client, files), {
      applied: [],
      pending: tags,
      unknown: [],
      lastVersion: undefined,
    });
  });

  it("reports the migrations a binary carries beyond the database's as pending", async () => {
    const { client } = await emptyDatabase();
    await applyMigrations(client, files.slice(0, -2), T0);
    const state = await schemaState(client, files);
    assert.deepEqual(state.applied, tags.slice(0, -2));
    assert.deepEqual(state.pending, tags.slice(-2));
    assert.deepEqual(state.unknown, []);
  });

  it("reports tags the binary does not carry as unknown: the database is newer", async () => {
    const { client } = await emptyDatabase();
    await applyMigrations(client, files, T0);
    await client.execute({
      sql: "INSERT INTO relay_migrations (tag, applied_at) VALUES (?, ?)",
      args: ["9999_from_the_future", T0],
    });
    const state = await schemaState(client, files);
    assert.deepEqual(state.applied, [...tags, "9999_from_the_future"]);
    assert.deepEqual(state.pending, []);
    assert.deepEqual(state.unknown, ["9999_from_the_future"]);
  });

  it("reads the relay version of the last migration when the database records it", async () => {
    const { client } = await emptyDatabase();
    await applyMigrations(client, files, T0);
    await client.execute("ALTER TABLE relay_migrations ADD COLUMN relay_version TEXT");
    await client.execute({
      sql: "INSERT INTO relay_migrations (tag, applied_at, relay_version) VALUES (?, ?, ?)",
      args: ["9999_from_the_future", T0, "9.9.9+abc1234"],
    });
    assert.equal((await schemaState(client, files)).lastVersion, "9.9.9+abc1234");
  });
});
