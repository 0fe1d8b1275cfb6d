/**
 * The sqld fixture (test/fixtures/sqld.ts) against the libSQL client the relay
 * uses: a real sqld on loopback, reached over HTTP and through an embedded
 * replica, with and without JWT authentication. The errors a wrong token
 * gives are pinned here: the relay turns them into its own message.
 */
import { type Client, createClient, LibsqlError } from "@libsql/client";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { signJwt, type Sqld, sqldMissing, startSqld } from "../fixtures/sqld.ts";
import { waitUntil } from "../helpers/wait-until.ts";

const count = async (client: Client) => Number((await client.execute("SELECT count(*) AS n FROM notes")).rows[0]!.n);

/** The rejection `promise` ends with, and how long it took, for the log. */
async function rejection(what: string, promise: Promise<unknown>): Promise<Error> {
  const started = performance.now();
  const error = await promise.then(() => assert.fail(`${what}: succeeded`), (error: Error) => error);
  console.log(`[sqld] ${what}: ${Math.round(performance.now() - started)} ms, ${error.message.split("\n")[0]}`);
  return error;
}

describe("sqld without authentication", { skip: sqldMissing }, () => {
  let sqld: Sqld;
  before(async () => (sqld = await startSqld()));
  after(() => sqld?.close());

  it("creates a table, writes and reads over HTTP", async () => {
    const client = createClient({ url: sqld.url });
    try {
      await client.execute("CREATE TABLE notes (text TEXT NOT NULL)");
      await client.execute({ sql: "INSERT INTO notes VALUES (?)", args: ["first"] });
      const rows = await client.execute("SELECT text FROM notes");
      assert.deepEqual(rows.rows.map((row) => row.text), ["first"]);
    } finally {
      client.close();
    }
  });

  it("keeps the data across stop() and start(), and across kill() and start(), at the same URL", async () => {
    const client = createClient({ url: sqld.url });
    try {
      const before = await count(client);
      await client.execute({ sql: "INSERT INTO notes VALUES (?)", args: ["before stop"] });
      await sqld.stop();
      await rejection("a query while sqld is stopped", client.execute("SELECT 1"));
      await sqld.start();
      assert.equal(await count(client), before + 1, sqld.output);
      await client.execute({ sql: "INSERT INTO notes VALUES (?)", args: ["before kill"] });
      await sqld.kill();
      await sqld.start();
      assert.equal(await count(client), before + 2, sqld.output);
    } finally {
      client.close();
    }
  });
});

describe("sqld with JWT authentication", { skip: sqldMissing }, () => {
  let sqld: Sqld;
  let right: Client;
  const replicas = mkdtempSync(join(tmpdir(), "relay-sqld-replicas-"));
  const otherKey = generateKeyPairSync("ed25519").privateKey;
  before(async () => {
    sqld = await startSqld({ jwt: true });
    right = createClient({ url: sqld.url, authToken: sqld.token() });
    await right.execute("CREATE TABLE notes (text TEXT NOT NULL)");
  });
  after(async () => {
    right?.close();
    await sqld?.close();
    rmSync(replicas, { recursive: true, force: true });
  });

  it("serves a client with the right token", async () => {
    await right.execute({ sql: "INSERT INTO notes VALUES (?)", args: ["authenticated"] });
    assert.ok((await count(right)) >= 1);
  });

  for (
    const [name, token] of [
      ["a token signed by another key", () => signJwt(otherKey)],
      ["no token", () => undefined],
    ] as const
  ) {
    it(`answers HTTP 401 to a client with ${name}`, async () => {
      const client = createClient({ url: sqld.url, authToken: token() });
      try {
        const error = await rejection(`HTTP client with ${name}`, client.execute("SELECT count(*) FROM notes"));
        assert.ok(error instanceof LibsqlError, String(error));
        assert.equal(error.code, "SERVER_ERROR");
        assert.equal(error.message, "SERVER_ERROR: Server returned HTTP status 401");
      } finally {
        client.close();
      }
    });
  }

  it("keeps an embedded replica: writes go to sqld, reads are local, others' writes arrive by sync", async () => {
    const replica = createClient({
      url: `file:${join(replicas, "right.db")}`,
      syncUrl: sqld.url,
      authToken: sqld.token(),
      syncInterval: 1,
    });
    try {
      let started = performance.now();
      await replica.sync();
      console.log(`[sqld] replica: first sync ${Math.round(performance.now() - started)} ms`);
      const before = await count(replica);
      started = performance.now();
      await replica.execute({ sql: "INSERT INTO notes VALUES (?)", args: ["through the replica"] });
      console.log(`[sqld] replica: a write (to sqld) ${(performance.now() - started).toFixed(1)} ms`);
      started = performance.now();
      assert.equal(await count(replica), before + 1);
      console.log(`[sqld] replica: reading it back (local) ${(performance.now() - started).toFixed(1)} ms`);
      assert.equal(await count(right), before + 1);

      await right.execute({ sql: "INSERT INTO notes VALUES (?)", args: ["from another client"] });
      started = performance.now();
      await waitUntil(() => count(replica), (n) => n === before + 2, { what: "the other write in the replica" });
      console.log(`[sqld] replica: another client's write seen after ${Math.round(performance.now() - started)} ms`);
    } finally {
      replica.close();
    }
  });

  it("keeps serving an embedded replica's reads while sqld is stopped, and its writes once it is back", async () => {
    const replica = createClient({
      url: `file:${join(replicas, "partition.db")}`,
      syncUrl: sqld.url,
      authToken: sqld.token(),
    });
    try {
      await replica.sync();
      const before = await count(replica);
      await sqld.stop();
      assert.equal(await count(replica), before);
      const write = await rejection(
        "replica, a write while sqld is stopped",
        replica.execute("INSERT INTO notes VALUES (1)"),
      );
      assert.match(write.message, /^WriteDelegation\(status: Unavailable, message: "error trying to connect: /);
      const sync = await rejection("replica, sync() while sqld is stopped", replica.sync());
      assert.equal(sync.message, "Replication(PrimaryHandshakeTimeout)");
      await sqld.start();
      const started = performance.now();
      await replica.execute({ sql: "INSERT INTO notes VALUES (?)", args: ["after the restart"] });
      console.log(`[sqld] replica: the first write after sqld is back ${Math.round(performance.now() - started)} ms`);
      assert.equal(await count(replica), before + 1);
    } finally {
      replica.close();
    }
  });

  it("gives an embedded replica with a wrong token an error at its first sync and write, not at createClient", async () => {
    const started = performance.now();
    const replica = createClient({
      url: `file:${join(replicas, "wrong.db")}`,
      syncUrl: sqld.url,
      authToken: signJwt(otherKey),
    });
    console.log(`[sqld] replica with a wrong token: createClient ${Math.round(performance.now() - started)} ms`);
    try {
      const write = await rejection(
        "replica with a wrong token, a write",
        replica.execute("INSERT INTO notes VALUES (1)"),
      );
      assert.match(
        write.message,
        /^WriteDelegation\(status: Unauthenticated, message: "AuthError: The JWT is invalid"/,
      );
      // The same error as when sqld is unreachable: a sync alone cannot tell a wrong token from a partition.
      const sync = await rejection("replica with a wrong token, sync()", replica.sync());
      assert.equal(sync.message, "Replication(PrimaryHandshakeTimeout)");
    } finally {
      replica.close();
    }
  });
});
