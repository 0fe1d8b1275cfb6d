/**
 * A missing test peer: a reason to skip a test, except under
 * RELAY_REQUIRE_PEERS=1 (CI), where the test file that needs it fails.
 * Shown on a small test file run by this runtime's own test runner, with a
 * peer whose path does not exist.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { aiosmtpdMissing, swaksMissing } from "../helpers/peers.ts";
import { repoRoot } from "../helpers/relay-process.ts";

const PEER = "/nonexistent/relay-test-peer";
const PACKAGE = "relay-test-peer-package";
const dir = mkdtempSync(join(tmpdir(), "relay-test-peers-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const file = join(dir, "needs-peer.test.ts");
writeFileSync(
  file,
  `import { existsSync } from "node:fs";
import { test } from "node:test";
import { NOT_INSTALLED, peerMissing } from ${JSON.stringify(join(repoRoot, "test", "helpers", "peers.ts"))};

const peerAbsent = peerMissing(${JSON.stringify(PEER)}, ${JSON.stringify(PACKAGE)}, !existsSync(${
    JSON.stringify(PEER)
  }) && NOT_INSTALLED);
test("talks to the peer", { skip: peerAbsent }, () => {});
`,
);

/**
 * The small test file run by the test runner this test runs under (bun test
 * or deno test). RELAY_REQUIRE_PEERS is always given: Deno's spawn adds the
 * parent's environment to the one passed, so leaving it out would inherit
 * CI's RELAY_REQUIRE_PEERS=1.
 */
function runTestFile(requirePeers: "0" | "1"): { code: number | null; output: string } {
  const args = "Deno" in globalThis ? ["test", "--allow-all", "--no-check", file] : ["test", file];
  const r = spawnSync(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: "1", RELAY_REQUIRE_PEERS: requirePeers },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, output: `${r.stdout}\n${r.stderr}` };
}

// Importing peers.ts checks its own peers first: with one of them missing, the run below would fail for that one.
describe("a test peer that is not installed", { skip: swaksMissing ?? aiosmtpdMissing }, () => {
  it("skips the test that needs it, saying why", () => {
    const run = runTestFile("0");
    assert.equal(run.code, 0, run.output);
    assert.ok(run.output.includes(`${PEER} is not installed (Debian package ${PACKAGE}`), run.output);
  });

  it("with RELAY_REQUIRE_PEERS=1, fails the test file, naming the peer and its Debian package", () => {
    const run = runTestFile("1");
    assert.notEqual(run.code, 0, run.output);
    assert.ok(
      run.output.includes(
        `RELAY_REQUIRE_PEERS=1 and a test peer cannot run: ${PEER} is not installed (Debian package ${PACKAGE}`,
      ),
      run.output,
    );
  });
});
