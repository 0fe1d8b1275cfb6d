import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { checkoutHead, isCommitOfCheckout } from "../helpers/checkout.ts";
import { repoRoot, runRelay, testBinary } from "../helpers/relay-process.ts";

const version: string = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version;

async function versionJson(options: { binary?: string }) {
  const result = await runRelay(["version", "--json"], options);
  assert.equal(result.code, 0, result.stderr);
  const info = JSON.parse(result.stdout);
  assert.deepEqual(Object.keys(info).sort(), ["build_date", "commit", "runtime", "target", "version"]);
  assert.equal(info.version, version);
  return info;
}

describe("relay version", () => {
  it("from source: the package version, the checkout's commit, target source, no build date", async () => {
    const head = checkoutHead();
    const info = await versionJson({});
    if (head === undefined) assert.equal(info.commit, null);
    else assert.match(info.commit, new RegExp(`^${head}(-dirty)?$`), "asked of git now");
    assert.equal(info.target, "source");
    assert.equal(info.build_date, null);
    assert.match(info.runtime, /^bun \d+\.\d+\.\d+$/);
  });

  it("compiled: the commit, target and build date it was built with", {
    skip: testBinary ? false : "RELAY_TEST_BINARY is not set (npm test builds dist/relay and sets it)",
  }, async () => {
    const info = await versionJson({ binary: testBinary });
    if (checkoutHead() !== undefined) assert.ok(isCommitOfCheckout(info.commit), `built here: ${info.commit}`);
    assert.equal(info.target, "linux-x64");
    assert.match(info.build_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Date.parse(info.build_date) <= Date.now(), "built in the past");
    const text = await runRelay(["version"], { binary: testBinary });
    assert.equal(text.code, 0, text.stderr);
    assert.deepEqual(text.stdout.trimEnd().split("\n"), [
      `relay ${version}`,
      `commit:  ${info.commit}`,
      "target:  linux-x64",
      `built:   ${info.build_date}`,
      `runtime: ${info.runtime}`,
    ]);
  });

  it("refuses an operand, and says how to use it", async () => {
    const result = await runRelay(["version", "now"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /version: unexpected argument "now"/);
  });
});
