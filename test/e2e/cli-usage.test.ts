import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runRelay, startRelay } from "../helpers/relay-process.ts";

/** What a new user meets at the command line: help, mistakes, typos in variables, a lost admin token. */
describe("the command line's rough edges", () => {
  it("extra arguments to a command that takes none are an error, not a second relay", async () => {
    const run = await runRelay(["serve", "users", "list"]);
    assert.equal(run.code, 2);
    assert.equal(run.stderr.trim(), 'relay: serve: unexpected argument "users"; see "relay serve --help"');
    const migrate = await runRelay(["migrate", "now"]);
    assert.equal(migrate.code, 2);
    assert.match(migrate.stderr, /^relay: migrate: unexpected argument "now"/);
  });

  it("relay help, relay help COMMAND, and relay --help print usage once, unprefixed", async () => {
    const overview = await runRelay(["help"]);
    assert.equal(overview.code, 0, overview.stderr);
    assert.match(overview.stdout, /^relay: a single-binary edge relay/);
    assert.match(overview.stdout, /^ {2}admin-token +reset: /m);
    assert.equal((await runRelay(["--help"])).stdout, overview.stdout);
    const users = await runRelay(["help", "users"]);
    assert.equal(users.code, 0);
    assert.match(users.stdout, /^Usage:\n {2}relay users add NAME/);
    const unknown = await runRelay(["help", "frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^relay: help: unknown command "frobnicate"\n\nrelay: a single-binary/);
  });

  it("an unknown command or option names the problem once and shows the usage without a prefix on it", async () => {
    const bogus = await runRelay(["bogus"]);
    assert.equal(bogus.code, 2);
    assert.match(bogus.stderr, /^relay: unknown command "bogus"\n\nrelay: a single-binary edge relay/);
    assert.doesNotMatch(bogus.stderr, /relay: relay:|^relay: $/m);
    const option = await runRelay(["users", "list", "--bogus"]);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /^relay: users: Unknown option '--bogus'.*\n\nUsage:\n {2}relay users add/);
  });

  it("a RELAY_* variable the relay does not know is a warning naming the closest known one", async () => {
    const run = await runRelay(["users", "list"], { env: { RELAY_SMTP_LISTN: "0.0.0.0:25", RELAY_ZZZZZZZZ: "1" } });
    assert.equal(run.code, 0, run.stderr);
    const warnings = run.stderr.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(warnings.map((w) => [w.level, w.message]), [
      ["warn", "unknown variable RELAY_SMTP_LISTN is ignored; did you mean RELAY_SMTP_LISTEN?"],
      ["warn", "unknown variable RELAY_ZZZZZZZZ is ignored"],
    ]);
  });
});

describe("relay admin-token reset", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "relay-cli-admin-token-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it(
    "the generated token lasts across restarts; reset replaces it in the running relay",
    { timeout: 60_000 },
    async () => {
      // An empty RELAY_ADMIN_TOKEN is no token: the relay makes one.
      const first = await startRelay({ dataDir, env: { RELAY_ADMIN_TOKEN: "" } });
      let token: string;
      try {
        token = /generated admin token \(shown once, stored hashed\): (\S+)/.exec(first.stdout)![1]!;
      } finally {
        await first.stop();
      }
      const relay = await startRelay({ dataDir, env: { RELAY_ADMIN_TOKEN: "" } });
      try {
        assert.doesNotMatch(relay.stdout, /generated admin token/, "a restart keeps the token");
        const status = (bearer: string) =>
          fetch(relay.url("/v1/events?limit=1"), { headers: { authorization: `Bearer ${bearer}` } }).then((r) =>
            r.status
          );
        assert.equal(await status(token), 200);

        const reset = await runRelay(["admin-token", "reset"], { dataDir, env: { RELAY_ADMIN_TOKEN: "" } });
        assert.equal(reset.code, 0, reset.stderr);
        const fresh = reset.stdout.trim();
        assert.match(fresh, /^[\w-]{32}$/);
        let answers: number[] = [];
        for (let i = 0; i < 100; i++) {
          answers = [await status(fresh), await status(token)];
          if (answers[0] === 200) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepEqual(answers, [200, 401], "the new token works and the old one no longer does");
      } finally {
        await relay.stop();
      }

      const refused = await runRelay(["admin-token", "reset"], { dataDir, env: { RELAY_ADMIN_TOKEN: "x".repeat(32) } });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /RELAY_ADMIN_TOKEN is set, and that token is the admin token/);
    },
  );
});
