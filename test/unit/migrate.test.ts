import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readdirSync, rmSync as remove, statSync } from "node:fs";
import { directoryHash } from "../helpers/directory-hash.ts";
import { type Database, openDatabase } from "../../src/queue/database.ts";
import { applyMigrations, NewerSchemaError, schemaState } from "../../src/queue/migrate.ts";
import { type MigrationFile, migrationFiles } from "../../src/queue/migration-files.ts";
import { openQueue, refuseNewerSchema } from "../../src/queue/open.ts";
import { BodySpool, spoolDirOf } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import type { Logger } from "../../src/core/log.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const T0 = 1_700_000_000_000;
const dirs: string[] = [];
const opened: Database[] = [];
after(async () => {
  for (const d of opened) await d.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "relay-migrate-"));
  dirs.push(dir);
  return dir;
}

async function emptyDatabase(): Promise<Database> {
  const database = await openDatabase(`file:${join(dataDir(), "relay.db")}`);
  opened.push(database);
  return database;
}

function recordingLog(): { log: Logger; lines: { message: string; fields?: Record<string, unknown> }[] } {
  const lines: { message: string; fields?: Record<string, unknown> }[] = [];
  return { log: (_level, message, fields) => void lines.push({ message, fields }), lines };
}

/** Two migrations a next release might bring: the first fits, the second fails half-way through its statements. */
const NEXT_GOOD: MigrationFile = {
  tag: "9000_next_good",
  sql: "CREATE TABLE next_things (id INTEGER PRIMARY KEY)\n--> statement-breakpoint\n" +
    "ALTER TABLE recipients ADD COLUMN next_note TEXT",
};
const NEXT_BROKEN: MigrationFile = {
  tag: "9001_next_broken",
  sql: "CREATE TABLE next_more (id INTEGER PRIMARY KEY)\n--> statement-breakpoint\n" +
    "INSERT INTO next_missing_table (id) VALUES (1)",
};

const body = new TextEncoder().encode("Subject: queued before the upgrade\r\n\r\nhello\r\n");

/**
 * A database at this binary's schema, written by it, holding one queued
 * message for two recipients; its body in the spool when `spoolDir` is given.
 */
async function queueWithMail(url: string, spoolDir?: string): Promise<string> {
  const { database } = await openQueue(url, { version: "1.0.0", log: () => {} });
  const spool = spoolDir === undefined ? undefined : await BodySpool.open(spoolDir);
  const store = new QueueStore(database, spool, new FakeClock(T0), "node-a");
  const id = await store.enqueue({
    mailFrom: "sender@src.example",
    recipients: [{ address: "a@dst.example", domain: "dst.example" }, {
      address: "b@dst.example",
      domain: "dst.example",
    }],
    body,
    source: "http",
  });
  await database.close();
  await spool?.close();
  return id;
}

/** What a table and column listing of the database says: its schema, to compare before and after. */
async function schemaText(database: Database): Promise<string> {
  const rows = (await database.client.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")).rows;
  return rows.map((r) => `${r.type} ${r.name} ${r.sql}`).join("\n");
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
    await client.execute({
      sql: "INSERT INTO relay_migrations (tag, applied_at, relay_version) VALUES (?, ?, ?)",
      args: ["9999_from_the_future", T0, "9.9.9+abc1234"],
    });
    assert.equal((await schemaState(client, files)).lastVersion, "9.9.9+abc1234");
  });
});

describe("applying migrations", () => {
  const files = migrationFiles();

  it("applies the whole set in one transaction: one that fails half-way leaves the previous schema and its mail", async () => {
    const url = `file:${join(dataDir(), "relay.db")}`;
    const id = await queueWithMail(url);
    const database = await openDatabase(url);
    opened.push(database);
    const before = await schemaText(database);

    await assert.rejects(
      applyMigrations(database.client, [...files, NEXT_GOOD, NEXT_BROKEN], T0, "2.0.0"),
      /next_missing_table/,
    );

    assert.equal(await schemaText(database), before, "not even the migration that fits was kept");
    const state = await schemaState(database.client, files);
    assert.deepEqual(state.applied, files.map((f) => f.tag));
    assert.deepEqual(state.pending, []);
    const store = new QueueStore(database, undefined, new FakeClock(T0), "node-a");
    const claims = await store.claimDue(10, 60_000);
    assert.deepEqual(claims.map((c) => c.address).sort(), ["a@dst.example", "b@dst.example"]);
    assert.deepEqual((await store.loadMessage(id))?.body, body);
  });

  it("records the relay version with each migration it applies, on a table from before versions were kept", async () => {
    const database = await emptyDatabase();
    // The table as relays before this one made it: no relay_version column.
    await database.client.execute(
      "CREATE TABLE relay_migrations (tag TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)",
    );
    await applyMigrations(database.client, files.slice(0, 3), T0);
    assert.equal((await schemaState(database.client, files)).lastVersion, undefined);
    await applyMigrations(database.client, files, T0, "1.2.3+abcdef0");
    const state = await schemaState(database.client, files);
    assert.equal(state.lastVersion, "1.2.3+abcdef0");
    assert.deepEqual(state.pending, []);
    const versions = (await database.client.execute("SELECT relay_version FROM relay_migrations ORDER BY rowid")).rows;
    assert.deepEqual(
      versions.map((r) => r.relay_version),
      [...files.slice(0, 3).map(() => null), ...files.slice(3).map(() => "1.2.3+abcdef0")],
    );
  });

  it("refuses a database with migrations it does not carry, naming both versions and the tags", async () => {
    const database = await emptyDatabase();
    await applyMigrations(database.client, [...files, NEXT_GOOD], T0, "2.0.0+1234567");
    const error = await applyMigrations(database.client, files, T0, "1.0.0+7654321").then(
      () => assert.fail("applied"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof NewerSchemaError);
    assert.match(error.message, /migrated by relay 2\.0\.0\+1234567; this relay 1\.0\.0\+7654321 does not know/);
    assert.match(error.message, /migration 9000_next_good/);
  });
});

describe("openQueue", () => {
  const files = migrationFiles();

  it("backs the database and its spool up before migrating, says where, and records the version", async () => {
    const dir = dataDir();
    const url = `file:${join(dir, "relay.db")}`;
    const spoolDir = spoolDirOf(dir);
    const id = await queueWithMail(url, spoolDir);
    const { log, lines } = recordingLog();
    const { database, applied } = await openQueue(url, {
      version: "2.0.0",
      log,
      spoolDir,
      files: [...files, NEXT_GOOD],
    });
    opened.push(database);
    assert.deepEqual(applied, ["9000_next_good"]);
    assert.equal((await schemaState(database.client, [...files, NEXT_GOOD])).lastVersion, "2.0.0");

    const schema = files.at(-1)!.tag;
    const backup = { database: join(dir, `relay.db.backup-${schema}`), spool: `${spoolDir}.backup-${schema}` };
    const said = lines.find((l) => l.message.startsWith("data directory backed up before migrating"));
    assert.deepEqual(said?.fields, { ...backup, schema, pending: ["9000_next_good"] });
    assert.ok(!readdirSync(dir).some((f) => f.endsWith(".partial")));
    // The newer relay delivers the mail and its collector removes the segment: the backup keeps it.
    for (const segment of readdirSync(spoolDir)) remove(join(spoolDir, segment));

    // The backup is the previous schema with its mail: what the previous binary runs on, once moved back.
    const old = await openQueue(`file:${backup.database}`, { version: "1.0.0", log: () => {} });
    opened.push(old.database);
    assert.deepEqual(old.applied, []);
    assert.deepEqual(await schemaState(old.database.client, files), {
      applied: files.map((f) => f.tag),
      pending: [],
      unknown: [],
      lastVersion: "1.0.0",
    });
    const oldSpool = await BodySpool.open(backup.spool);
    try {
      const store = new QueueStore(old.database, oldSpool, new FakeClock(T0), "n");
      assert.deepEqual((await store.loadMessage(id))?.body, body);
    } finally {
      await oldSpool.close();
    }
  });

  it("makes no backup of a new database: it has nothing to keep", async () => {
    const dir = dataDir();
    const { database } = await openQueue(`file:${join(dir, "relay.db")}`, { version: "1.0.0", log: () => {} });
    opened.push(database);
    assert.ok(!readdirSync(dir).some((f) => f.includes("backup")));
  });

  it("a failed upgrade leaves the database usable by the binary that wrote it", async () => {
    const dir = dataDir();
    const url = `file:${join(dir, "relay.db")}`;
    const id = await queueWithMail(url);
    await assert.rejects(
      openQueue(url, { version: "2.0.0", log: () => {}, files: [...files, NEXT_GOOD, NEXT_BROKEN] }),
      /next_missing_table/,
    );
    const { database, applied } = await openQueue(url, { version: "1.0.0", log: () => {} });
    opened.push(database);
    assert.deepEqual(applied, []);
    assert.deepEqual((await new QueueStore(database, undefined, new FakeClock(T0), "n").loadMessage(id))?.body, body);
  });

  it("refuses a database a newer relay migrated without opening it for writing", async () => {
    const dir = dataDir();
    const url = `file:${join(dir, "relay.db")}`;
    const newer = await openQueue(url, { version: "2.0.0", log: () => {}, files: [...files, NEXT_GOOD] });
    await newer.database.close();
    const before = directoryHash(dir);
    await assert.rejects(
      openQueue(url, { version: "1.0.0", log: () => {} }),
      (e: unknown) => e instanceof NewerSchemaError && e.message.includes(`${url} was migrated by relay 2.0.0`),
    );
    assert.equal(directoryHash(dir), before, "no file made or changed, -wal and -shm included");
  });

  it("reads the schema of a database a running relay has open, its rows still in the write-ahead log", async () => {
    const dir = dataDir();
    const url = `file:${join(dir, "relay.db")}`;
    const live = await openDatabase(url);
    opened.push(live);
    await applyMigrations(live.client, files, T0, "1.0.0");
    assert.ok(statSync(join(dir, "relay.db-wal")).size > 0, "rows in the write-ahead log");
    await refuseNewerSchema(url, "1.0.0");
    await applyMigrations(live.client, [...files, NEXT_GOOD], T0, "2.0.0");
    await assert.rejects(refuseNewerSchema(url, "1.0.0"), NewerSchemaError);
  });
});
