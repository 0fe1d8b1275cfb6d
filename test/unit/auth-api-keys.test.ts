import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ApiKeyService, apiTokenId, keyHasScope, parseScopes } from "../../src/auth/api-keys.ts";
import { UsageError } from "../../src/core/errors.ts";
import { CredentialStore } from "../../src/queue/credentials.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-keys-");

const T0 = 1_700_000_000_000;

async function fresh() {
  const { database } = await temporaryDatabase(T0);
  const clock = new FakeClock(T0);
  return { keys: new ApiKeyService(new CredentialStore(database, clock)), database, clock };
}
describe("ApiKeyService", () => {
  it("creates rk_<12-char id>_<43-char base64url secret>, stored only as SHA-256 of the whole token", async () => {
    const { keys, database } = await fresh();
    const { record, token } = await keys.create({
      name: "ci",
      scopes: ["send", "read"],
      domains: ["Example.com"],
      lane: "bulk",
      scan: true,
    });
    assert.match(token, /^rk_[0-9a-z]{12}_[A-Za-z0-9_-]{43}$/);
    assert.equal(apiTokenId(token), record.id);
    assert.deepEqual(record, {
      id: record.id,
      name: "ci",
      scopes: ["send", "read"],
      domains: ["example.com"],
      lane: "bulk",
      scan: true,
      createdAt: T0,
      revokedAt: null,
    });
    const rows = (await database.client.execute("SELECT * FROM api_keys")).rows;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.scan, 1, "scan stored as an integer");
    assert.equal(rows[0]!.secret_hash, createHash("sha256").update(token).digest("hex"));
    const secret = token.slice(16);
    for (const value of Object.values(rows[0]!)) assert.ok(!String(value).includes(secret), "the secret is not stored");
  });

  it("defaults to scope send, no domain limit, no name, transactional, scanned as the scope says; ids differ", async () => {
    const { keys } = await fresh();
    const a = await keys.create({});
    const b = await keys.create({});
    assert.deepEqual(a.record.scopes, ["send"]);
    assert.deepEqual(a.record.domains, []);
    assert.equal(a.record.lane, "transactional");
    assert.equal(a.record.scan, null);
    assert.equal(a.record.name, "");
    assert.notEqual(a.record.id, b.record.id);
    assert.notEqual(a.token, b.token);
  });

  it("verifies its own token and nothing else", async () => {
    const { keys } = await fresh();
    const { record, token } = await keys.create({ name: "k", scopes: ["admin"] });
    assert.deepEqual(await keys.verify(token), record);
    const other = await keys.create({ name: "other" });
    assert.equal((await keys.verify(other.token))?.id, other.record.id);
    // One character of the secret changed; the id of another key with this secret; not a token at all.
    const last = token.at(-1) === "A" ? "B" : "A";
    assert.equal(await keys.verify(token.slice(0, -1) + last), undefined);
    assert.equal(await keys.verify(`rk_${other.record.id}_${token.slice(16)}`), undefined);
    for (const junk of ["", "rk_", token + "x", token.slice(0, -1), `Bearer ${token}`, token.toUpperCase()]) {
      assert.equal(await keys.verify(junk), undefined, junk);
    }
  });

  it("keeps each key's scan setting: verify and list read it back as stored", async () => {
    const { keys } = await fresh();
    const on = await keys.create({ name: "on", scan: true });
    const off = await keys.create({ name: "off", scan: false });
    const unset = await keys.create({ name: "unset" });
    assert.equal((await keys.verify(on.token))?.scan, true);
    assert.equal((await keys.verify(off.token))?.scan, false);
    assert.equal((await keys.verify(unset.token))?.scan, null);
    assert.deepEqual((await keys.list()).map((k) => [k.name, k.scan]).sort(), [
      ["off", false],
      ["on", true],
      ["unset", null],
    ]);
  });

  it("revokes: the token stops working, the key stays listed with its revocation time", async () => {
    const { keys, clock } = await fresh();
    const { record, token } = await keys.create({ name: "k" });
    clock.set(T0 + 5_000);
    assert.equal(await keys.revoke(record.id), true);
    assert.equal(await keys.verify(token), undefined);
    assert.equal(await keys.revoke(record.id), false, "already revoked");
    assert.equal(await keys.revoke("nosuchkey000"), false);
    const [listed] = await keys.list();
    assert.equal(listed?.id, record.id);
    assert.equal(listed?.revokedAt, T0 + 5_000);
  });

  it("refuses unknown scopes and bad domains with every problem listed", async () => {
    const { keys } = await fresh();
    await assert.rejects(keys.create({ scopes: ["send", "bogus"], domains: ["x_y"] }), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.equal(error.problems.length, 2);
      assert.match(error.problems[0]!, /scope "bogus" is not valid: expected one of send, read, admin/);
      assert.match(error.problems[1]!, /domain "x_y" is not valid/);
      return true;
    });
    assert.deepEqual(await keys.list(), []);
  });

  it("maySendFrom: empty grant = any, else exact case-insensitive match", async () => {
    const { keys } = await fresh();
    assert.equal(keys.maySendFrom({ domains: [] }, "x.example"), true);
    assert.equal(keys.maySendFrom({ domains: ["example.com"] }, "Example.COM"), true);
    assert.equal(keys.maySendFrom({ domains: ["example.com"] }, "sub.example.com"), false);
  });
});

describe("scopes", () => {
  it("parses repeated and comma-listed scopes, de-duplicated, in canonical order", () => {
    assert.deepEqual(parseScopes(undefined), ["send"]);
    assert.deepEqual(parseScopes([]), ["send"]);
    assert.deepEqual(parseScopes(["admin", "send,READ", "send"]), ["send", "read", "admin"]);
  });

  it("admin grants every scope", () => {
    assert.equal(keyHasScope({ scopes: ["admin"] }, "read"), true);
    assert.equal(keyHasScope({ scopes: ["send"] }, "send"), true);
    assert.equal(keyHasScope({ scopes: ["send"] }, "read"), false);
  });
});
