/**
 * The suppression list at scale (issue 14), relay only, on loopback:
 *
 *   1. `relay suppressions import` of a CSV of N entries (default 1,000,000)
 *      into a fresh data directory: seconds and peak RSS;
 *   2. `relay suppressions export` of the same N: seconds, peak RSS, lines;
 *   3. acceptance over HTTP (POST /v1/messages, 10 recipients each, one of
 *      them suppressed, the others not, scheduled a day ahead so that no
 *      delivery runs meanwhile) against the relay serving that data
 *      directory and against one with an empty list; rounds alternate and
 *      the medians are compared (the target: within 5%).
 *
 *   bun scripts/bench-suppressions.ts [--entries N] [--messages M] [--rounds R]
 *                                     [--concurrency C] [--binary PATH] [--json FILE]
 *
 * Peak RSS is the process's VmHWM from /proc, read until it exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { relayCommand, serveRelay } from "./bench-serve.ts";

const { values } = parseArgs({
  options: {
    entries: { type: "string", default: "1000000" },
    messages: { type: "string", default: "2000" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "32" },
    binary: { type: "string" },
    json: { type: "string" },
  },
});
const ENTRIES = Number(values.entries);
const MESSAGES = Number(values.messages);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const command = relayCommand(values.binary);
const TOKEN = "bench-suppressions-admin-token-0123456789";
const run = mkdtempSync(join(tmpdir(), "relay-bench-suppress-"));

const suppressed = (i: number) => `s${i}@list${i % 1000}.test`;

function env(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    RELAY_DATA_DIR: dataDir,
    RELAY_HOSTNAME: "relay.bench.test",
    RELAY_LOG_LEVEL: "warn",
    RELAY_ADMIN_TOKEN: TOKEN,
    ...extra,
  };
}

/** Peak RSS in MB (VmHWM), polled while the process runs. */
function watchPeak(child: ChildProcess): () => number {
  let peakKb = 0;
  const timer = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      // exited between two polls
    }
  }, 50);
  child.once("exit", () => clearInterval(timer));
  return () => peakKb / 1024;
}

/** Run a CLI command to completion: seconds, peak RSS, and its standard output to `stdoutFile` (or kept). */
async function cli(dataDir: string, args: string[], stdoutFile?: string) {
  const { file, argv } = command(args);
  const t0 = performance.now();
  const child = spawn(file, argv, { env: env(dataDir), stdio: ["ignore", "pipe", "pipe"] });
  const peak = watchPeak(child);
  let stdout = "";
  let stderr = "";
  const sink = stdoutFile ? createWriteStream(stdoutFile) : undefined;
  if (sink) child.stdout!.pipe(sink);
  else child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const [code] = (await once(child, "exit")) as [number];
  if (sink) await new Promise((r) => sink.end(r));
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`relay ${args.join(" ")}: exit ${code}\n${stderr.slice(-2000)}`);
  return { seconds, peakMb: peak(), stdout };
}

async function writeCsv(path: string, n: number): Promise<void> {
  const out = createWriteStream(path);
  out.write("address,scope,reason\n");
  for (let i = 0; i < n; i++) {
    if (!out.write(`${suppressed(i)},global,import\n`)) await once(out, "drain");
  }
  await new Promise((r) => out.end(r));
}

function serve(dataDir: string) {
  return serveRelay(command, env(dataDir));
}

/** Messages accepted per second over HTTP, `CONCURRENCY` requests in flight. */
async function accept(url: string, round: number): Promise<{ rate: number; suppressed: number }> {
  const sendAt = new Date(Date.now() + 86_400_000).toISOString();
  let next = 0;
  const post = async (i: number) => {
    const rcpt_to = [suppressed((i * 7919 + round) % ENTRIES)];
    for (let r = 1; r < 10; r++) rcpt_to.push(`r${round}-${i}-${r}@open${r}.test`);
    const response = await fetch(`${url}/v1/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        mail_from: "bench@sender.test",
        rcpt_to,
        raw: `From: bench@sender.test\r\nSubject: ${i}\r\n\r\n${`${"x".repeat(76)}\r\n`.repeat(13)}`,
        send_at: sendAt,
      }),
    });
    const body = await response.json() as { recipients?: { status: string }[] };
    if (response.status !== 202) throw new Error(`POST /v1/messages: ${response.status} ${JSON.stringify(body)}`);
    return body.recipients!.filter((r) => r.status === "suppressed").length;
  };
  let hits = 0;
  const load = (until: number) =>
    Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < until) {
          const found = await post(next++);
          hits += found;
        }
      }),
    );
  // A warm-up tenth, not measured: the JIT, the database's first pages.
  const warmup = Math.ceil(MESSAGES / 10);
  await load(warmup);
  hits = 0;
  const t0 = performance.now();
  await load(warmup + MESSAGES);
  return { rate: MESSAGES / ((performance.now() - t0) / 1000), suppressed: hits };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const csv = join(run, "suppressions.csv");
  await writeCsv(csv, ENTRIES);
  const full = join(run, "full");
  const empty = join(run, "empty");
  await cli(empty, ["migrate"]);
  const imported = await cli(full, ["suppressions", "import", csv]);
  console.log(
    `import ${ENTRIES.toLocaleString("en")}: ${imported.seconds.toFixed(1)} s, peak RSS ${
      imported.peakMb.toFixed(0)
    } MB`,
  );
  const exportFile = join(run, "export.csv");
  const exported = await cli(full, ["suppressions", "export"], exportFile);
  const lines = readFileSync(exportFile, "utf8").split("\n").filter((l) => l !== "").length - 1;
  console.log(
    `export ${lines.toLocaleString("en")}: ${exported.seconds.toFixed(1)} s, peak RSS ${exported.peakMb.toFixed(0)} MB`,
  );
  const rates: Record<"full" | "empty", number[]> = { full: [], empty: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const which of round % 2 ? (["empty", "full"] as const) : (["full", "empty"] as const)) {
      const relay = await serve(which === "full" ? full : empty);
      try {
        const { rate, suppressed: hits } = await accept(relay.url, round);
        rates[which].push(rate);
        console.log(
          `accept round ${round} ${which === "full" ? "with the list" : "empty list"}: ${rate.toFixed(0)} msg/s ` +
            `(${hits} recipients suppressed)`,
        );
      } finally {
        await relay.stop();
      }
    }
  }
  const ratio = median(rates.full) / median(rates.empty);
  console.log(
    `accept median: ${median(rates.full).toFixed(0)} msg/s with ${ENTRIES.toLocaleString("en")} suppressions, ` +
      `${median(rates.empty).toFixed(0)} msg/s empty (${(ratio * 100).toFixed(1)}%)`,
  );
  if (values.json) {
    writeFileSync(
      values.json,
      JSON.stringify(
        {
          entries: ENTRIES,
          messages: MESSAGES,
          imported,
          exported: { ...exported, stdout: undefined, lines },
          rates,
          ratio,
        },
        null,
        2,
      ),
    );
  }
}

try {
  await main();
} finally {
  rmSync(run, { recursive: true, force: true });
}
