import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runRelay } from "../helpers/relay-process.ts";

interface ListedKey {
  id: string;
  name: string;
  scopes: string[];
  domains: string[];
  priority: string;
  scan: boolean | null;
  created_at: string;
  revoked_at: string | null;
}

/** `relay keys ...` against one data directory. */
describe("relay keys", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "relay-cli-keys-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  const relay = (args: string[]) => runRelay(["keys", ...args], { dataDir });
  const listJson = async () => {
    const out = await relay(["list", "--json"]);
    assert.equal(out.code, 0, out.stderr);
    return JSON.parse(out.stdout) as ListedKey[];
  };
  let first: { id: string; token: string };

  it("creates a key and prints its id and token once", async () => {
    const created = await relay([
      "create",
      "--name",
      "ci deploy",
      "--scope",
      "send",
      "--scope",
      "read",
      "--domains",
      "Example.com",
    ]);
    assert.equal(created.code, 0, created.stderr);
    const id = /^id: (\S+)$/m.exec(created.stdout)?.[1];
    const token = /^token: (\S+)$/m.exec(created.stdout)?.[1];
    assert.ok(id && token, created.stdout);
    assert.match(token, new RegExp(`^rk_${id}_[A-Za-z0-9_-]{43}$`));
    assert.match(created.stdout, /priority transactional; scan scope\); the token is shown only this once/);
    first = { id, token };
  });

  it("lists keys without the secret", async () => {
    const json = await relay(["create", "--priority", "bulk", "--scan", "on", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const second = JSON.parse(json.stdout) as ListedKey & { token: string };
    assert.deepEqual(second.scopes, ["send"], "default scope");
    assert.deepEqual(second.domains, []);
    assert.equal(second.priority, "bulk");
    assert.equal(second.scan, true);

    const list = await relay(["list"]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(
      lines[0]!,
      new RegExp(
        `^${first.id}\\s+ci deploy\\s+send,read\\s+example\\.com\\s+transactional\\s+scope\\s+\\d{4}-[\\d:T.-]+Z\\s+-$`,
      ),
    );
    assert.match(lines[1]!, new RegExp(`^${second.id}\\s+-\\s+send\\s+\\*\\s+bulk\\s+on\\s+`));
    const secret = first.token.slice(`rk_${first.id}_`.length);
    assert.ok(!list.stdout.includes(secret), "no secret in the list");

    const keys = await listJson();
    assert.deepEqual(
      keys.map((k) => [k.id, k.name, k.scopes, k.domains, k.priority, k.scan, k.revoked_at]),
      [
        [first.id, "ci deploy", ["send", "read"], ["example.com"], "transactional", null, null],
        [second.id, "", ["send"], [], "bulk", true, null],
      ],
    );
    assert.ok(!JSON.stringify(keys).includes(secret));
    assert.ok(!JSON.stringify(keys).includes("rk_"));

    // Nothing under the data dir holds the secret in clear; the SHA-256 of the token is what is kept.
    const stored = readdirSync(dataDir).map((file) => readFileSync(join(dataDir, file)).toString("latin1"));
    assert.ok(!stored.some((bytes) => bytes.includes(secret)), "the secret is stored somewhere");
    const hash = createHash("sha256").update(first.token).digest("hex");
    assert.ok(stored.some((bytes) => bytes.includes(hash)), "the token's SHA-256 is stored");
  });

  it("takes scopes as a comma list and refuses unknown scopes or bad domains with exit 2", async () => {
    const admin = await relay(["create", "--scope", "admin,read", "--json"]);
    assert.equal(admin.code, 0, admin.stderr);
    assert.deepEqual((JSON.parse(admin.stdout) as ListedKey).scopes, ["read", "admin"]);

    const before = (await listJson()).length;
    const bogus = await relay(["create", "--scope", "send,everything"]);
    assert.equal(bogus.code, 2);
    assert.match(bogus.stderr, /scope "everything" is not valid: expected one of send, read, admin/);
    const badDomain = await relay(["create", "--domains", "bad_domain"]);
    assert.equal(badDomain.code, 2);
    assert.match(badDomain.stderr, /domain "bad_domain" is not valid/);
    const badPriority = await relay(["create", "--priority", "soon"]);
    assert.equal(badPriority.code, 2);
    assert.match(badPriority.stderr, /priority "soon" is not valid: expected transactional or bulk/);
    const badScan = await relay(["create", "--scan", "maybe"]);
    assert.equal(badScan.code, 2);
    assert.match(badScan.stderr, /scan "maybe" is not valid: expected on or off/);
    assert.equal((await listJson()).length, before, "nothing created");
  });

  it("revokes a key: listed as revoked; revoking again or an unknown id exits 1", async () => {
    const revoked = await relay(["revoke", first.id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const key = (await listJson()).find((k) => k.id === first.id)!;
    assert.ok(key.revoked_at && !Number.isNaN(Date.parse(key.revoked_at)));
    const list = await relay(["list"]);
    assert.match(list.stdout, new RegExp(`^${first.id}.*revoked \\d{4}-`, "m"));

    const again = await relay(["revoke", first.id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`no live API key with id "${first.id}"`));
    const unknown = await relay(["revoke", "nosuchkey123"]);
    assert.equal(unknown.code, 1);

    const missing = await relay(["revoke"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /relay keys revoke ID/);
  });

  it("has --help", async () => {
    const help = await relay(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /relay keys create \[--name NAME\] \[--scope SCOPE\]/);
    assert.match(help.stdout, /relay keys revoke ID/);
  });
});
