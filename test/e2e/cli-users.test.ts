import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runRelay } from "../helpers/relay-process.ts";

/** `relay users ...` against one data directory, as an operator would run it. */
describe("relay users", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "relay-cli-users-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  const relay = (args: string[], input?: string) => runRelay(["users", ...args], { dataDir, input });

  it("adds a user with the password from stdin and lists it", async () => {
    const added = await relay(
      ["add", "alice@example.com", "--domains", "Example.com,b.example"],
      "correct horse battery\n",
    );
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /added user alice@example\.com/);

    assert.match(added.stdout, /priority: transactional; scan: scope\)/);

    const bob = await relay(["add", "bob", "--priority", "Bulk", "--scan", "Off"], "another long secret");
    assert.equal(bob.code, 0, bob.stderr);
    assert.match(bob.stdout, /added user bob \(sender domains: any; priority: bulk; scan: off\)/);

    const list = await relay(["list"]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(
      lines[0]!,
      /^alice@example\.com\s+example\.com,b\.example\s+transactional\s+scope\s+\d{4}-\d\d-\d\dT[\d:.]+Z$/,
    );
    assert.match(lines[1]!, /^bob\s+\*\s+bulk\s+off\s+\d{4}-/);
    assert.doesNotMatch(list.stdout, /scrypt|correct horse/);

    const json = await relay(["list", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const users = JSON.parse(json.stdout) as {
      name: string;
      domains: string[];
      priority: string;
      scan: boolean | null;
      created_at: string;
    }[];
    assert.deepEqual(users.map((u) => [u.name, u.domains, u.priority, u.scan]), [
      ["alice@example.com", ["example.com", "b.example"], "transactional", null],
      ["bob", [], "bulk", false],
    ]);
    assert.ok(!Number.isNaN(Date.parse(users[0]!.created_at)));
    assert.doesNotMatch(json.stdout, /scrypt|password/i);
  });

  it("refuses a duplicate name with exit 2 and a clear message", async () => {
    const again = await relay(["add", "alice@example.com"], "some other password\n");
    assert.equal(again.code, 2);
    assert.match(again.stderr, /user "alice@example\.com" already exists/);
  });

  it("refuses a bad name, a short or missing password, and a bad domain with exit 2", async () => {
    const badName = await relay(["add", "no spaces please"], "long enough password\n");
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /user name "no spaces please" is not valid: expected 1-64 characters/);

    const short = await relay(["add", "carol"], "short\n");
    assert.equal(short.code, 2);
    assert.match(short.stderr, /password is too short: expected at least 8 characters/);

    const none = await relay(["add", "carol"], "");
    assert.equal(none.code, 2);
    assert.match(none.stderr, /password on standard input/);

    const badDomain = await relay(["add", "carol", "--domains", "ok.example,not_a_domain"], "long enough password\n");
    assert.equal(badDomain.code, 2);
    assert.match(badDomain.stderr, /domain "not_a_domain" is not valid/);

    const badPriority = await relay(["add", "carol", "--priority", "urgent"], "long enough password\n");
    assert.equal(badPriority.code, 2);
    assert.match(badPriority.stderr, /priority "urgent" is not valid: expected transactional or bulk/);

    const badScan = await relay(["add", "carol", "--scan", "yes"], "long enough password\n");
    assert.equal(badScan.code, 2);
    assert.match(badScan.stderr, /scan "yes" is not valid: expected on or off/);

    const scanOnList = await relay(["list", "--scan", "on"]);
    assert.equal(scanOnList.code, 2);
    assert.match(scanOnList.stderr, /users list: --scan does not apply/);

    const noName = await relay(["add"]);
    assert.equal(noName.code, 2);
    assert.match(noName.stderr, /relay users add NAME/);

    const list = await relay(["list", "--json"]);
    assert.ok(!(JSON.parse(list.stdout) as { name: string }[]).some((u) => u.name === "carol"));
  });

  it("removes a user; removing an absent one exits 1 with a message", async () => {
    const removed = await relay(["remove", "bob"]);
    assert.equal(removed.code, 0, removed.stderr);
    const list = await relay(["list"]);
    assert.doesNotMatch(list.stdout, /^bob/m);

    const absent = await relay(["remove", "bob"]);
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, /no user "bob"/);
  });

  it("has --help and refuses an unknown action with exit 2", async () => {
    const help = await relay(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /relay users add NAME \[--domains/);
    assert.match(help.stdout, /standard input/);

    const unknown = await relay(["rename", "x"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /users: unknown action "rename": expected add, list or remove/);
  });
});
