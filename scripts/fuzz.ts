/**
 * Coverage-guided fuzzing of the parsers with Jazzer.js (libFuzzer on Node):
 * each target in test/fuzz/*.fuzz.ts (`export function fuzz(data: Buffer)`)
 * is bundled for Node (Jazzer runs on Node, which does not run our
 * TypeScript) and fuzzed for a while. A thrown error, an input that runs past
 * --timeout-ms (a hang) or memory past --rss-mb is a finding: its input is
 * kept in the artifacts directory, and `bun test`'s properties
 * (test/unit/parser-fuzz-*.test.ts) are the place for its regression test.
 *
 *   bun scripts/fuzz.ts [--seconds 60] [--timeout-ms 10000] [--rss-mb 2048]
 *                       [--artifacts DIR] [--parallel 1] [target ...]
 *
 * Targets are named by file (smtp-command, dns-decode, ...); all by default.
 * Each starts from the valid inputs in test/fuzz/seeds/<target> (and the
 * bounce samples, for feedback) and keeps its corpus in
 * node_modules/.cache/relay-fuzz/<target>, so a run goes on from where the
 * last one stopped. Exit status 1 when any target has
 * a finding. On glibc older than 2.38 the addon is loaded through
 * scripts/fuzz-glibc-compat.ts.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { jazzerEnvironment } from "./fuzz-glibc-compat.ts";

const ROOT = resolve(import.meta.dir, "..");
const TARGETS = join(ROOT, "test/fuzz");
const JAZZER = join(ROOT, "node_modules/@jazzer.js/core/dist/cli.js");
/** Valid inputs to start from, besides test/fuzz/seeds/<target>: the fuzz reaches deeper from them. */
const SEEDS: Readonly<Record<string, readonly string[]>> = { feedback: [join(ROOT, "test/fixtures/bounces")] };

const { values, positionals } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    "timeout-ms": { type: "string", default: "10000" },
    "rss-mb": { type: "string", default: "2048" },
    artifacts: { type: "string", default: join(ROOT, "fuzz-findings") },
    parallel: { type: "string", default: "1" },
  },
  allowPositionals: true,
});
const seconds = Number(values.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, not ${values.seconds}`);

const all = readdirSync(TARGETS).filter((f) => f.endsWith(".fuzz.ts")).map((f) => basename(f, ".fuzz.ts")).sort();
const unknown = positionals.filter((t) => !all.includes(t));
if (unknown.length > 0) throw new Error(`unknown targets ${unknown.join(", ")}; there are ${all.join(", ")}`);
const targets = positionals.length > 0 ? positionals : all;

const environment = { ...process.env, ...jazzerEnvironment() };
const bundles = mkdtempSync(join(tmpdir(), "relay-fuzz-"));
const findings: string[] = [];
try {
  const queue = [...targets];
  const worker = async () => {
    for (let target = queue.shift(); target !== undefined; target = queue.shift()) {
      const finding = await fuzzTarget(target);
      if (finding) findings.push(finding);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(values.parallel)) }, worker));
} finally {
  rmSync(bundles, { recursive: true, force: true });
}
console.log(findings.length === 0 ? `fuzz: no findings in ${targets.length} targets` : findings.join("\n"));
process.exit(findings.length === 0 ? 0 : 1);

/** Bundles one target for Node and fuzzes it; returns what it found, if anything. */
async function fuzzTarget(target: string): Promise<string | undefined> {
  const built = await Bun.build({
    entrypoints: [join(TARGETS, `${target}.fuzz.ts`)],
    outdir: bundles,
    target: "node",
    format: "esm",
    naming: `${target}.mjs`,
  });
  if (!built.success) throw new AggregateError(built.logs, `bundling ${target} failed`);
  const corpus = join(ROOT, "node_modules/.cache/relay-fuzz", target);
  const artifacts = join(resolve(values.artifacts!), target);
  mkdirSync(corpus, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  const seeds = [join(TARGETS, "seeds", target), ...(SEEDS[target] ?? [])].filter((dir) => existsSync(dir));
  const status = await run(target, [
    JAZZER,
    join(bundles, `${target}.mjs`),
    corpus,
    ...seeds,
    `--timeout=${values["timeout-ms"]}`,
    "--",
    `-max_total_time=${seconds}`,
    `-rss_limit_mb=${values["rss-mb"]}`,
    `-artifact_prefix=${artifacts}/`,
    "-print_final_stats=1",
  ]);
  const kept = readdirSync(artifacts);
  if (status === 0 && kept.length === 0) return void rmSync(artifacts, { recursive: true });
  return `${target}: exit status ${status}; inputs in ${artifacts}: ${kept.join(", ") || "none"}`;
}

/** Runs Jazzer on one target, its output prefixed with the target's name; resolves to its exit status. */
function run(target: string, args: string[]): Promise<number> {
  console.log(`fuzz: ${target} for ${seconds} s`);
  const child = spawn("node", args, { cwd: ROOT, env: environment, stdio: ["ignore", "pipe", "pipe"] });
  for (const stream of [child.stdout, child.stderr]) {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (text: string) => {
      const lines = (partial + text).split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (!/^#\d+\s+(NEW|REDUCE|pulse)/.test(line)) console.log(`${target}: ${line}`);
    });
  }
  return new Promise((done) => child.on("close", (code, signal) => done(code ?? (signal ? 128 : 1))));
}
