/**
 * The coverage-guided fuzz run, CI-sized: scripts/fuzz.ts fuzzes every
 * Jazzer.js target in test/fuzz/ for a few seconds each (libFuzzer on Node);
 * a crash, a hang or runaway memory in any of them fails this test, and the
 * input that caused it is named in the output. The longer run is
 * `bun scripts/fuzz.ts` (60 s a target by default).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { NOT_INSTALLED, peerMissing } from "../helpers/peers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const SECONDS_PER_TARGET = 2;

/** Before glibc 2.38 the fuzzer's addon loads through a shim g++ builds (scripts/fuzz-glibc-compat.ts). */
const glibc = /(\d+)\.(\d+)\s*$/m.exec(
  spawnSync("ldd", ["--version"], { encoding: "utf8" }).stdout?.split("\n")[0] ?? "",
);
const needsShim = glibc !== null && Number(glibc[1]) * 1000 + Number(glibc[2]) < 2038;
const gppMissing = peerMissing("g++", "g++", needsShim && !existsSync("/usr/bin/g++") && NOT_INSTALLED);

describe("coverage-guided fuzzing of the parsers (Jazzer.js)", () => {
  it("no target crashes, hangs or runs out of memory", { timeout: 300_000, skip: gppMissing }, async () => {
    const artifacts = mkdtempSync(join(tmpdir(), "relay-fuzz-findings-"));
    try {
      const args = [
        "scripts/fuzz.ts",
        "--seconds",
        String(SECONDS_PER_TARGET),
        "--parallel",
        "3",
        "--artifacts",
        artifacts,
      ];
      const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      for (const stream of [child.stdout, child.stderr]) stream.on("data", (b: Buffer) => (output += b.toString()));
      const status = await new Promise<number | null>((done) => child.on("close", done));
      const targets = readdirSync(join(ROOT, "test/fuzz")).filter((f) => f.endsWith(".fuzz.ts"));
      assert.equal(status, 0, output.split("\n").filter((l) => !/^\S+: (INFO|#\d)/.test(l)).slice(-80).join("\n"));
      assert.match(output, new RegExp(`fuzz: no findings in ${targets.length} targets`));
      for (const target of targets) assert.match(output, new RegExp(`${target.replace(".fuzz.ts", "")}: .*DONE`));
    } finally {
      rmSync(artifacts, { recursive: true, force: true });
    }
  });
});
