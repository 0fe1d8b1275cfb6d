#!/usr/bin/env node
// The whole test suite: `npm test`. Plain Node (>= 20) ESM, no dependencies.
//
// 0. the checks, each counted as one test: the import rules
//    (scripts/check-imports.ts), the type check (tsc), the formatter
//    (`deno fmt --check`) and the linter (`deno lint`); skipped when
//    arguments pick some tests;
// 1. builds dist/relay (`bun scripts/build.ts`): an end-to-end test runs it;
//    and the release binaries into dist/release (`bun scripts/release.ts`),
//    for test/e2e/release.test.ts, when that test is among those run;
// 2. installs sqld when missing (scripts/install-sqld.ts: quiet when present),
//    the libSQL server the fleet tests start; then `bun test` over test/
//    (unit and e2e; test/deno is left to Deno);
// 3. Deno: `deno check` of src/ and the Deno tests, then `deno test` of the
//    files deno.json's "test" section names (test/deno/ and every unit test
//    that runs on Deno; its "exclude" lists the others, each with the reason).
//
// Output streams through. The last line is exactly `tests: N passed, M failed`.
// Exit status is non-zero when a step failed, a test failed, or nothing ran.
// A step that fails without reporting a failed test (a build error, a runner
// crash, a timeout) counts as one failed test, so M > 0 whenever the exit
// status is non-zero for a reason other than "nothing ran".
//
// Environment:
//   RELAY_TEST_SKIP_BUILD=1       use the dist/relay and dist/release already built
//   RELAY_TEST_STEP_TIMEOUT_S=N   kill a step after N seconds (default 2400: a hung step, not a slow machine)
//   extra arguments are passed to `bun test` (e.g. `npm test -- test/unit`);
//   Deno then runs those of them that are its tests, if any
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const binary = join(root, "dist", "relay");
const releaseDir = join(root, "dist", "release");
const releaseTest = join("test", "e2e", "release.test.ts");
const stepTimeoutMs = Number(process.env.RELAY_TEST_STEP_TIMEOUT_S || 2400) * 1000;
const extraBunArgs = process.argv.slice(2);

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const totals = { passed: 0, failed: 0 };
const failures = []; // what failed, with the lines before it, repeated above the last line
let stepFailed = false;
let current = null; // the running child, for signal forwarding

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (current) current.kill(signal);
    process.exitCode = 130;
  });
}

/** Run a command, streaming its output; resolve { code, out, err } (tails, ANSI removed). */
function run(title, command, args, env = {}) {
  console.log(`\n=== ${title}: ${[relative(root, command) || command, ...args].join(" ")}`);
  return new Promise((done) => {
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    current = child;
    const tail = { out: "", err: "" };
    const keep = (key, sink) => (chunk) => {
      sink.write(chunk);
      tail[key] = (tail[key] + chunk.toString("utf8")).slice(-16 * 1024 * 1024);
    };
    child.stdout.on("data", keep("out", process.stdout));
    child.stderr.on("data", keep("err", process.stderr));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`\n=== ${title}: still running after ${stepTimeoutMs / 1000} s, killing it`);
      child.kill("SIGKILL");
    }, stepTimeoutMs);
    const finish = (code) => {
      clearTimeout(timer);
      current = null;
      done({ code: timedOut ? 124 : code, out: tail.out.replace(ANSI, ""), err: tail.err.replace(ANSI, "") });
    };
    child.on("error", (error) => {
      console.error(`=== ${title}: cannot start ${command}: ${error.message}`);
      finish(127);
    });
    child.on("close", (code, signal) => finish(code ?? (signal ? 128 : 1)));
  });
}

/** Count a step that failed without a test failure to show for it. */
function stepFailure(title, code) {
  console.error(`=== ${title} failed (exit ${code})`);
  failures.push(`${title}: exit ${code}`);
  stepFailed = true;
  totals.failed += 1;
}

// ---- 0. checks ----------------------------------------------------------------

if (extraBunArgs.length === 0) {
  const checks = [
    ["import rules", bin("bun"), [join("scripts", "check-imports.ts")]],
    ["type check", bin("tsc"), ["--noEmit", "-p", "."]],
    ["formatting", bin("deno"), ["fmt", "--check"]],
    ["lint", bin("deno"), ["lint"]],
  ];
  for (const [title, command, args] of checks) {
    const result = await run(title, command, args, { NO_COLOR: "1" });
    if (result.code === 0) totals.passed += 1;
    else stepFailure(title, result.code);
  }
}

// ---- 1. build -----------------------------------------------------------------

if (process.env.RELAY_TEST_SKIP_BUILD === "1") {
  console.log(`=== build: skipped (RELAY_TEST_SKIP_BUILD=1), using ${relative(root, binary)}`);
} else {
  const build = await run("build", bin("bun"), [join("scripts", "build.ts")]);
  if (build.code !== 0) stepFailure("build", build.code);
  const paths = extraBunArgs.filter((arg) => !arg.startsWith("-"));
  if (paths.length === 0 || paths.some((path) => within(releaseTest, path))) {
    // --no-measure: the test runs the binaries itself; sizes and start-up times are for a release made by hand.
    const release = await run("release", bin("bun"), [
      join("scripts", "release.ts"),
      "--out",
      releaseDir,
      "--no-measure",
    ]);
    if (release.code !== 0) stepFailure("release", release.code);
  }
}

// ---- 2. bun test ----------------------------------------------------------------

// A failure is not counted here: the tests that need sqld say so when they skip or fail.
if (spawnSync(bin("bun"), [join("scripts", "install-sqld.ts")], { cwd: root, stdio: "inherit" }).status !== 0) {
  console.error("=== sqld is not installed: the tests that need it skip (fail with RELAY_REQUIRE_PEERS=1)");
}

{
  const title = "bun test";
  const result = await run(
    title,
    bin("bun"),
    [
      "test",
      "--no-orphans", // relay processes an e2e test leaves behind die with the runner
      "--timeout",
      "60000",
      "--path-ignore-patterns",
      "test/deno/**",
      ...(extraBunArgs.length > 0 ? extraBunArgs : ["test/"]),
    ],
    { RELAY_TEST_BINARY: binary, RELAY_TEST_RELEASE_DIR: releaseDir },
  );
  const text = `${result.out}\n${result.err}`;
  const count = (word) => {
    const all = [...text.matchAll(new RegExp(`^\\s*(\\d+) ${word}\\s*$`, "gm"))];
    return all.length > 0 ? Number(all[all.length - 1][1]) : null;
  };
  const passed = count("pass");
  const failed = count("fail");
  failures.push(...bunFailures(result.out + "\n" + result.err));
  const noFiles = /did not match any test files|No tests found/.test(text) && passed === null && failed === null;
  totals.passed += passed ?? 0;
  totals.failed += failed ?? 0;
  if (noFiles) console.log(`=== ${title}: no test files`);
  else if (result.code !== 0 && failed) stepFailed = true;
  else if (result.code !== 0) stepFailure(title, result.code);
}

/**
 * Each `(fail) name` line bun printed, with the lines before it (the error and
 * its place) back to the last test that passed, at most 25 of them.
 */
function bunFailures(text) {
  const lines = text.split("\n");
  const found = [];
  lines.forEach((line, index) => {
    if (!line.startsWith("(fail) ")) return;
    let start = index;
    while (start > 0 && index - start < 25 && !/^\((pass|fail|skip)\) /.test(lines[start - 1])) start -= 1;
    found.push(lines.slice(start, index + 1).join("\n"));
  });
  return found;
}

// ---- 3. deno check, deno test -------------------------------------------------------

/**
 * Leaf test cases from Deno's JUnit report: a case named "A" with steps "A > b" is not a leaf.
 * Names are matched over the whole report: Deno files the steps of node:test's
 * describe/it in a suite of their own (classname ext:deno_node/testing.ts), not their file's.
 */
function countJunit(xml) {
  const cases = [...xml.matchAll(/<testcase\b[^>]*\bname="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)].map((m) => ({
    name: m[1],
    failed: /<(failure|error)\b/.test(m[3] ?? ""),
    skipped: /<skipped\b/.test(m[3] ?? ""),
  }));
  const names = cases.map((c) => c.name);
  const counts = { passed: 0, failed: 0 };
  for (const c of cases) {
    const children = names.filter((n) => n.startsWith(`${c.name} &gt; `));
    const childFailed = cases.some((d) => d.failed && d.name.startsWith(`${c.name} &gt; `));
    if (children.length > 0 && (!c.failed || childFailed)) continue; // a container: its steps are counted
    if (c.skipped) continue;
    if (c.failed) counts.failed += 1;
    else counts.passed += 1;
  }
  return counts;
}

/** Whether `path` is `dir` or inside it (both relative to the repository). */
function within(path, dir) {
  const rest = relative(resolve(root, dir), resolve(root, path));
  return rest === "" || (!rest.startsWith("..") && !isAbsolute(rest));
}

/**
 * What Deno runs: deno.json's test.include, or, when paths were given, those
 * of them inside it (and the included folders inside a given folder).
 * deno.json is JSON with whole-line `//` comments.
 */
function denoTestPaths() {
  // No "exclude" when every unit test runs on Deno too.
  const { include, exclude = [] } =
    JSON.parse(readFileSync(join(root, "deno.json"), "utf8").replace(/^\s*\/\/.*$/gm, "")).test;
  if (extraBunArgs.length === 0) return include;
  const given = extraBunArgs.filter((arg) => !arg.startsWith("-") && existsSync(resolve(root, arg)));
  return [
    ...given.filter((path) => include.some((dir) => within(path, dir)) && !exclude.some((file) => within(path, file))),
    ...include.filter((dir) => given.some((path) => within(dir, path) && !within(path, dir))),
  ];
}

const denoPaths = denoTestPaths();
if (denoPaths.length === 0) {
  console.log("\n=== deno: none of the given paths holds Deno tests (deno.json test.include), skipped");
} else {
  // Type-checked once here, so `deno test` need not check again: with checking on, it checks
  // every worker module again each time a test starts a worker (seconds each).
  const check = await run("deno check", bin("deno"), [
    "check",
    "--quiet",
    ...(extraBunArgs.length === 0 ? ["src/"] : []),
    ...denoPaths,
  ], {
    ...(process.stdout.isTTY ? {} : { NO_COLOR: "1" }),
  });
  if (check.code !== 0) stepFailure("deno check", check.code);

  const title = "deno test";
  const scratch = mkdtempSync(join(tmpdir(), "relay-deno-junit-"));
  const junit = join(scratch, "report.xml");
  const result = await run(title, bin("deno"), [
    "test",
    "--allow-all",
    "--no-check",
    "--parallel",
    `--junit-path=${junit}`,
    ...denoPaths,
  ], {
    RELAY_TEST_BINARY: binary,
    ...(process.stdout.isTTY ? {} : { NO_COLOR: "1" }),
  });
  const counts = existsSync(junit) ? countJunit(readFileSync(junit, "utf8")) : { passed: 0, failed: 0 };
  if (counts.failed > 0) failures.push(...result.out.split("\n").filter((line) => /\.\.\. FAILED/.test(line)));
  rmSync(scratch, { recursive: true, force: true });
  totals.passed += counts.passed;
  totals.failed += counts.failed;
  if (result.code !== 0 && counts.failed === 0) stepFailure(title, result.code);
  else if (result.code !== 0) stepFailed = true;
}

// ---- summary --------------------------------------------------------------------------

const nothingRan = totals.passed + totals.failed === 0;
if (nothingRan) console.error("\n=== no tests ran");
if (failures.length > 0) console.log(`\n=== what failed\n\n${failures.join("\n\n")}`);
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed`);
if (!process.exitCode) process.exitCode = stepFailed || totals.failed > 0 || nothingRan ? 1 : 0;
