/**
 * Upgrades and downgrades of the data directory (docs/upgrading.md), through
 * the real relay process.
 *
 * There is no earlier release yet, so the upgrade starts from the closest
 * real thing: a database at the schema before the newest migration
 * (PREVIOUS_SCHEMA), made by the real migration code, holding queued mail
 * written with SQL for that schema (the columns as they were then; bodies in
 * the rows, as relays before the spool kept them). It does not prove that
 * an earlier release's code wrote exactly these rows, nor cover bodies in
 * the spool (no migration changes the spool's files).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import pkg from "../../package.json" with { type: "json" };
import { newId } from "../../src/core/id.ts";
import { openDatabase } from "../../src/queue/database.ts";
import { applyMigrations, type SchemaState, schemaState } from "../../src/queue/migrate.ts";
import { type MigrationFile, migrationFiles } from "../../src/queue/migration-files.ts";
import { directoryHash } from "../helpers/directory-hash.ts";
import { freePorts, runRelay, startRelay, testBinary } from "../helpers/relay-process.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWebhookReceiver, type WebhookReceiver } from "../helpers/webhook-receiver.ts";
import { startWorld, type World } from "../helpers/world.ts";

/** The schema the upgrade starts from: the one before queue control's listing index (0017). */
const PREVIOUS_SCHEMA = "0016_events_filters";

const dirs: string[] = [];
const worlds: World[] = [];
const receivers: WebhookReceiver[] = [];
after(async () => {
  for (const w of worlds) await w.close();
  for (const r of receivers) await r.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "relay-upgrade-"));
  dirs.push(dir);
  return dir;
}

/** The binary's migrations up to and including `tag`. */
function migrationsThrough(tag: string): MigrationFile[] {
  const files = migrationFiles();
  const at = files.findIndex((f) => f.tag === tag);
  assert.ok(at >= 0, `no migration ${tag}`);
  return files.slice(0, at + 1);
}

async function stateOf(dir: string): Promise<SchemaState> {
  const database = await openDatabase(`file:${join(dir, "relay.db")}`);
  try {
    return await schemaState(database.client, migrationFiles());
  } finally {
    await database.close();
  }
}

interface QueuedBefore {
  readonly id: string;
  readonly recipients: readonly string[];
  readonly subject: string;
}

/**
 * A data directory as a relay at PREVIOUS_SCHEMA left it: two messages
 * waiting, one with two recipients never tried, one with a recipient
 * deferred once and due again, each with its "received" event.
 */
async function previousDataDir(dir: string): Promise<QueuedBefore[]> {
  const database = await openDatabase(`file:${join(dir, "relay.db")}`);
  const past = Date.now() - 60_000;
  const queued: QueuedBefore[] = [
    { id: newId(past), recipients: ["one@dest.test", "two@dest.test"], subject: "queued before the upgrade" },
    { id: newId(past + 1), recipients: ["three@dest.test"], subject: "deferred before the upgrade" },
  ];
  try {
    await applyMigrations(database.client, migrationsThrough(PREVIOUS_SCHEMA), past);
    const statements = queued.flatMap((m, i) => {
      const body = new TextEncoder().encode(`From: a@sender.test\r\nSubject: ${m.subject}\r\n\r\nhello\r\n`);
      return [
        {
          sql: "INSERT INTO messages (id, created_at, mail_from, source, size, body) VALUES (?, ?, ?, 'http', ?, ?)",
          args: [m.id, past, "a@sender.test", body.byteLength, body],
        },
        ...m.recipients.flatMap((address) => [
          {
            sql: i === 0
              ? "INSERT INTO recipients (message_id, address, domain, state, next_attempt_at, updated_at, lane) " +
                "VALUES (?, ?, 'dest.test', 'queued', ?, ?, 'transactional')"
              : "INSERT INTO recipients (message_id, address, domain, state, attempts, last_reply, next_attempt_at, " +
                "updated_at, lane) VALUES (?, ?, 'dest.test', 'deferred', 1, '451 4.4.1 try later', ?, ?, 'bulk')",
            args: [m.id, address, past, past],
          },
          {
            sql: "INSERT INTO events (at, type, message_id, recipient, data) VALUES (?, 'received', ?, ?, ?)",
            args: [past, m.id, address, JSON.stringify({ mail_from: "a@sender.test", source: "http" })],
          },
        ]),
      ];
    });
    await database.client.batch(statements, "write");
  } finally {
    await database.close();
  }
  return queued;
}

describe("upgrade: a newer relay on an older data directory", () => {
  it(`migrates from ${PREVIOUS_SCHEMA} at start, keeps a backup, and delivers the mail queued before`, async () => {
    const dir = dataDir();
    const queued = await previousDataDir(dir);
    const before = await stateOf(dir);
    assert.equal(before.applied.at(-1), PREVIOUS_SCHEMA);
    assert.ok(before.pending.length > 0, "the binary has migrations to apply");

    const world = await startWorld({ dataDir: dir, binary: testBinary, env: { RELAY_LOG_LEVEL: "info" } });
    worlds.push(world);
    const recipients = queued.flatMap((m) => m.recipients);
    await waitUntil(
      () => world.events(),
      (events) => recipients.every((r) => events.some((e) => e.type === "delivered" && e.recipient === r)),
      { what: `a delivered event for ${recipients.join(", ")}`, timeout: 30_000, every: 100 },
    );
    for (const m of queued) {
      const received = world.destination.messages.filter((r) => r.data.includes(`Subject: ${m.subject}`));
      assert.deepEqual(received.flatMap((r) => r.recipients).sort(), [...m.recipients].sort());
    }

    const backup = join(dir, `relay.db.backup-${PREVIOUS_SCHEMA}`);
    assert.ok(existsSync(backup), "the database at the previous schema is kept");
    assert.match(world.relay.stderr, /data directory backed up before migrating/);
    assert.ok(world.relay.stderr.includes(backup), "the log says where the backup is");
    assert.equal(await world.relay.stop(), 0);

    const after = await stateOf(dir);
    assert.deepEqual(after.pending, []);
    assert.deepEqual(after.unknown, []);
    assert.ok(after.lastVersion?.startsWith(pkg.version), `recorded version ${after.lastVersion}`);
  });
});

describe("upgrade: webhook endpoints keep their progress when it moves to a table of its own (0020)", () => {
  const BEFORE = "0018_fleet";
  const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

  it("each endpoint goes on from its cursor, with its failure state and dead letters", async () => {
    const dir = dataDir();
    const [caughtUp, failing] = [await startWebhookReceiver("ok"), await startWebhookReceiver("ok")];
    receivers.push(caughtUp, failing);
    const past = Date.now() - 60_000;
    const retryAt = Date.now() + 3_600_000;
    const database = await openDatabase(`file:${join(dir, "relay.db")}`);
    try {
      await applyMigrations(database.client, migrationsThrough(BEFORE), past);
      const event = (n: number) => ({
        sql: "INSERT INTO events (id, at, type, message_id, recipient, data) VALUES (?, ?, 'received', ?, ?, '{}')",
        args: [n, past, `m${n}`, `r${n}@dest.test`],
      });
      const webhook = "INSERT INTO webhooks (id, url, event_types, secret, created_at, cursor, batch_end, attempts, " +
        "first_failure_at, next_attempt_at, last_error, last_success_at) VALUES (?, ?, '[\"*\"]', ?, ?, ?, ?, ?, ?, ?, ?, ?)";
      await database.client.batch([
        event(1),
        event(2),
        event(3),
        // Done with 1 and 2 (1 a dead letter), 3 to go.
        { sql: webhook, args: ["wh_caught_up", caughtUp.url, SECRET, past, 2, null, 0, null, null, null, past] },
        {
          sql:
            "INSERT INTO webhook_dead_letters (webhook_id, event_id, event, dead_at, last_error) VALUES (?, ?, ?, ?, ?)",
          args: ["wh_caught_up", 1, JSON.stringify({ id: 1, type: "received" }), past, "HTTP 500"],
        },
        // The batch up to 3 failed twice; the next attempt is an hour away.
        {
          sql: webhook,
          args: ["wh_failing", failing.url, SECRET, past, 0, 3, 2, past, retryAt, "HTTP 503", null],
        },
      ], "write");
    } finally {
      await database.close();
    }

    const world = await startWorld({
      dataDir: dir,
      binary: testBinary,
      env: { RELAY_WEBHOOK_ALLOW_PRIVATE: "true" },
    });
    worlds.push(world);
    await waitUntil(() => caughtUp.acknowledged().length, (n) => n > 0, { what: "a delivery to the endpoint" });
    const first = caughtUp.acknowledged()[0]!;
    assert.equal(first.headers["webhook-id"], "evt_3_3", "the events after its cursor");
    assert.deepEqual(JSON.parse(first.body).data.events.map((e: { id: number }) => e.id), [3]);

    const status = async (id: string) => (await world.api("GET", `/v1/webhooks/${id}`)).json;
    const after = await waitUntil(() => status("wh_caught_up"), (s) => s.cursor === "3", { what: "its cursor at 3" });
    assert.equal(after.dead_letters, 1);
    const letters = await world.api("GET", "/v1/webhooks/wh_caught_up/dead-letters");
    assert.deepEqual(letters.json.dead_letters.map((d: { event_id: number }) => d.event_id), [1]);
    const waiting = await status("wh_failing");
    assert.deepEqual(
      [waiting.cursor, waiting.attempts, waiting.last_error, waiting.next_attempt_at],
      ["0", 2, "HTTP 503", new Date(retryAt).toISOString()],
      "the failing batch waits for its retry",
    );
    assert.equal(failing.requests.length, 0);
    assert.equal(await world.relay.stop(), 0);
  });
});

describe("downgrade: an older relay on a data directory a newer one migrated", () => {
  /** A migration of a release this binary does not know. */
  const FUTURE: MigrationFile = {
    tag: "9000_from_the_future",
    sql: "CREATE TABLE future_things (id INTEGER PRIMARY KEY, what TEXT NOT NULL)",
  };
  const FUTURE_VERSION = "99.0.0+f00d000";

  it("serve, migrate and the other commands refuse with exit 1, naming both versions and the tag, and change nothing", async () => {
    const dir = dataDir();
    // A directory as a relay leaves it when it stops: database, spool, TLS files, its lock file with its pid.
    const first = await startRelay({ dataDir: dir, binary: testBinary });
    assert.equal(await first.stop(), 0, first.stderr);
    assert.ok(existsSync(join(dir, "relay.lock")));
    // What a newer relay would have done: its migration applied by the real code, its version recorded.
    const database = await openDatabase(`file:${join(dir, "relay.db")}`);
    await applyMigrations(database.client, [...migrationFiles(), FUTURE], Date.now(), FUTURE_VERSION);
    await database.client.execute("INSERT INTO future_things (what) VALUES ('kept')");
    await database.close();
    const before = directoryHash(dir);

    const [smtp, http] = await freePorts(2);
    const env = { RELAY_SMTP_LISTEN: `127.0.0.1:${smtp}`, RELAY_HTTP_LISTEN: `127.0.0.1:${http}` };
    for (const args of [["serve"], ["migrate"], ["users", "list"], ["keys", "list"], ["suppressions", "export"]]) {
      const run = await runRelay(args, { dataDir: dir, binary: testBinary, env, timeoutMs: 30_000 });
      const what = `relay ${args.join(" ")}`;
      assert.equal(run.code, 1, `${what}: exit ${run.code}\n${run.stderr}`);
      assert.ok(
        run.stderr.includes(`migrated by relay ${FUTURE_VERSION}`),
        `${what} names the newer version:\n${run.stderr}`,
      );
      assert.ok(run.stderr.includes(`this relay ${pkg.version}`), `${what} names its own version:\n${run.stderr}`);
      assert.ok(run.stderr.includes(FUTURE.tag), `${what} names the unknown migration:\n${run.stderr}`);
      assert.equal(directoryHash(dir), before, `${what} changed the data directory`);
    }
  });
});
