import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as passwords from "../../src/auth/passwords.ts";
import {
  domainAllowed,
  normalizeDomains,
  passwordProblem,
  userNameProblem,
  UserService,
} from "../../src/auth/users.ts";
import type { Clock } from "../../src/core/clock.ts";
import { UsageError } from "../../src/core/errors.ts";
import { CredentialStore } from "../../src/queue/credentials.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-users-");

const T0 = 1_700_000_000_000;

async function service(): Promise<{ users: UserService; store: CredentialStore }> {
  const { database } = await temporaryDatabase(T0);
  const clock: Clock = { now: () => T0 };
  const store = new CredentialStore(database, clock);
  return { users: new UserService(store), store };
}
async function usageProblems(promise: Promise<unknown>): Promise<readonly string[]> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail("expected a UsageError");
}

describe("user name and password rules", () => {
  it("names: 1-64 characters of A-Z a-z 0-9 . _ @ + -", () => {
    for (const ok of ["a", "alice", "alice@example.com", "a.b_c+d-e", "A1", "x".repeat(64)]) {
      assert.equal(userNameProblem(ok), undefined, ok);
    }
    for (const bad of ["", "x".repeat(65), "has space", "semi;colon", "t\u00e9st", "new\nline", "a/b", "a:b"]) {
      assert.match(userNameProblem(bad) ?? "", /is not valid: expected 1-64 characters/, JSON.stringify(bad));
    }
  });

  it("passwords: at least 8 characters (code points), no NUL", () => {
    assert.equal(passwordProblem("12345678"), undefined);
    assert.equal(passwordProblem("\u{1F511}".repeat(8)), undefined, "8 emoji are 8 characters");
    assert.match(passwordProblem("1234567") ?? "", /too short: expected at least 8 characters, got 7/);
    assert.match(passwordProblem("12345678\0") ?? "", /NUL/);
  });

  it("domains are lower-cased, de-duplicated, IDN-converted, and invalid ones all listed", () => {
    assert.deepEqual(normalizeDomains(["Example.COM", "example.com.", " b.example "]), ["example.com", "b.example"]);
    assert.deepEqual(normalizeDomains(["b\u00fccher.example"]), ["xn--bcher-kva.example"]);
    assert.throws(
      () => normalizeDomains(["ok.example", "no_underscore.example", "localhost", "-bad.example"]),
      (error: unknown) => error instanceof UsageError && error.problems.length === 3,
    );
  });
});

describe("UserService", () => {
  it("adds a user with a hashed password and normalized domains, then lists and removes it", async () => {
    const { users } = await service();
    const added = await users.add({ name: "alice@example.com", password: "s3cret-pass", domains: ["Example.com"] });
    assert.equal(added.name, "alice@example.com");
    assert.deepEqual(added.domains, ["example.com"]);
    assert.equal(added.createdAt, T0);
    assert.match(added.passwordHash, /^scrypt\$/);
    assert.ok(!added.passwordHash.includes("s3cret-pass"));
    assert.equal(added.lane, "transactional", "the default lane");
    assert.equal(added.scan, null, "scanned as RELAY_MILTER_SCOPE says");
    await users.add({ name: "bob", password: "another-pass", lane: "bulk", scan: false });
    await users.add({ name: "carol", password: "third-pass", scan: true });
    assert.deepEqual((await users.list()).map((u) => [u.name, u.lane, u.scan]), [
      ["alice@example.com", "transactional", null],
      ["bob", "bulk", false],
      ["carol", "transactional", true],
    ]);
    assert.equal((await users.authenticate("bob", "another-pass"))?.scan, false, "what SMTP AUTH grants");
    assert.equal(await users.remove("carol"), true);
    assert.equal(await users.remove("bob"), true);
    assert.equal(await users.remove("bob"), false);
    assert.deepEqual((await users.list()).map((u) => u.name), ["alice@example.com"]);
  });

  it("refuses a bad name, a short password and a bad domain, listing every problem", async () => {
    const { users } = await service();
    const problems = await usageProblems(users.add({ name: "bad name", password: "short", domains: ["x_y"] }));
    assert.equal(problems.length, 3);
    assert.match(problems[0]!, /user name "bad name" is not valid/);
    assert.match(problems[1]!, /password is too short/);
    assert.match(problems[2]!, /domain "x_y" is not valid/);
    assert.deepEqual(await users.list(), []);
  });

  it("refuses a name that is taken", async () => {
    const { users } = await service();
    await users.add({ name: "alice", password: "first-password" });
    const problems = await usageProblems(users.add({ name: "alice", password: "second-password" }));
    assert.deepEqual(problems, ['user "alice" already exists']);
    assert.ok(await users.authenticate("alice", "first-password"), "the first password still works");
  });

  it("authenticates the right password only; names are case-sensitive", { timeout: 30_000 }, async () => {
    const { users } = await service();
    await users.add({ name: "alice", password: "correct-horse", domains: ["example.com"] });
    const user = await users.authenticate("alice", "correct-horse");
    assert.equal(user?.name, "alice");
    assert.deepEqual(user?.domains, ["example.com"]);
    assert.equal(await users.authenticate("alice", "wrong-horse"), undefined);
    assert.equal(await users.authenticate("Alice", "correct-horse"), undefined);
    assert.equal(await users.authenticate("nobody", "correct-horse"), undefined);
    assert.equal(await users.authenticate("", ""), undefined);
  });

  it("does one scrypt verification whether or not the user exists (dummy hash when absent)", async () => {
    const { users: plain, store } = await service();
    await plain.add({ name: "alice", password: "correct-horse" });
    const calls: string[] = [];
    const users = new UserService(store, {
      verify: (password, stored) => {
        calls.push(stored === passwords.DUMMY_PASSWORD_HASH ? "dummy" : "real");
        return passwords.verifyPassword(password, stored);
      },
    });
    assert.equal((await users.authenticate("alice", "correct-horse"))?.name, "alice");
    assert.equal(await users.authenticate("alice", "wrong-horse"), undefined);
    assert.equal(await users.authenticate("nobody", "correct-horse"), undefined);
    assert.equal(await users.authenticate("not a valid name", "correct-horse"), undefined);
    assert.deepEqual(calls, ["real", "real", "dummy", "dummy"]);
    // The dummy hash carries the parameters of a real one, so it costs the same.
    const real = (await store.getUser("alice"))!.passwordHash.split("$").slice(0, 4);
    assert.deepEqual(passwords.DUMMY_PASSWORD_HASH.split("$").slice(0, 4), real);
  });
});

describe("maySendFrom", () => {
  it("allows any domain when the user has none", async () => {
    const { users } = await service();
    assert.equal(users.maySendFrom({ domains: [] }, "anything.example"), true);
  });

  it("matches granted domains exactly and case-insensitively, not subdomains or parents", async () => {
    const { users } = await service();
    const user = { domains: ["example.com", "b.example"] };
    assert.equal(users.maySendFrom(user, "example.com"), true);
    assert.equal(users.maySendFrom(user, "EXAMPLE.Com"), true);
    assert.equal(users.maySendFrom(user, "example.com."), true);
    assert.equal(users.maySendFrom(user, "b.example"), true);
    assert.equal(users.maySendFrom(user, "mail.example.com"), false, "subdomain: exact match only");
    assert.equal(users.maySendFrom(user, "com"), false);
    assert.equal(users.maySendFrom(user, "example.org"), false);
    assert.equal(users.maySendFrom(user, "notexample.com"), false);
    assert.equal(users.maySendFrom(user, ""), false, "null sender or no domain: not granted by a domain list");
  });

  it("compares IDN domains in their A-label form", () => {
    assert.equal(domainAllowed(normalizeDomains(["b\u00fccher.example"]), "B\u00dcCHER.example"), true);
  });
});
