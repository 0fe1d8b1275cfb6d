/**
 * The suppressions phase of scripts/bench (issue 14), relay only, on loopback:
 *
 *   1. `relay suppressions import` of a CSV of N entries (1,000,000; 100,000
 *      with --quick) into a fresh data directory: seconds and peak RSS;
 *   2. `relay suppressions export` of the same N: seconds, peak RSS, lines;
 *   3. acceptance over HTTP (POST /v1/messages, 10 recipients each, one of
 *      them suppressed, the others not, scheduled a day ahead so that no
 *      delivery runs meanwhile) against the relay serving that data
 *      directory and against one with an empty list; rounds alternate and
 *      the medians are compared (the target: within 5%).
 *
 * Peak RSS is the process's VmHWM from /proc, read until it exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { serveRelay } from "./bench-serve.ts";

export interface SuppressionsBenchContext {
  /** Where the phase's files go. */
  readonly run: string;
  /** The relay as the harness runs it: the command before its arguments, and where it runs. */
  readonly relay: { readonly cmd: readonly string[]; readonly cwd: string };
  readonly entries: number;
  readonly messages: number;
  readonly rounds: number;
  /** HTTP requests in flight during acceptance. */
  readonly concurrency: number;
  /** utime + stime of a process, all its threads, in seconds. */
  cpuSecondsOf(pid: number): number;
  log(line: string): void;
}

interface CliRun {
  readonly seconds: number;
  readonly peakMb: number;
}

export interface SuppressionsResult {
  readonly entries: number;
  readonly messages: number;
  readonly imported: CliRun;
  readonly exported: CliRun & { readonly lines: number };
  /** Messages accepted per second, per round. */
  readonly rates: { readonly full: number[]; readonly empty: number[] };
  /** The relay's CPU time per accepted message, per round, in ms: what a shared, noisy machine disturbs least. */
  readonly cpuMs: { readonly full: number[]; readonly empty: number[] };
  /** The median rate with the list over the median without. */
  readonly ratio: number;
  /** The median CPU per message without the list over the median with it (above 0.95: within 5%). */
  readonly cpuRatio: number;
}

const TOKEN = "bench-suppressions-admin-token-0123456789";
/** The list's entry number `i`: `suppressionCsv` writes them, and a load's recipients name some. */
export const suppressedAddress = (i: number) => `s${i}@list${i % 1000}.test`;

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
async function cli(ctx: SuppressionsBenchContext, dataDir: string, args: string[], stdoutFile?: string) {
  const [file, ...pre] = ctx.relay.cmd;
  const t0 = performance.now();
  const child = spawn(file!, [...pre, ...args], {
    cwd: ctx.relay.cwd,
    env: env(dataDir),
    stdio: ["ignore", "pipe", "pipe"],
  });
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

/** A CSV for `relay suppressions import` of entries 0 to n - 1. */
export async function suppressionCsv(path: string, n: number): Promise<void> {
  const out = createWriteStream(path);
  out.write("address,scope,reason\n");
  for (let i = 0; i < n; i++) {
    if (!out.write(`${suppressedAddress(i)},global,import\n`)) await once(out, "drain");
  }
  await new Promise((r) => out.end(r));
}

async function serve(
  ctx: SuppressionsBenchContext,
  dataDir: string,
): Promise<{ url: string; cpuSeconds: () => number; stop: () => Promise<void> }> {
  const [file, ...pre] = ctx.relay.cmd;
  const relay = await serveRelay((args) => ({ file: file!, argv: [...pre, ...args] }), env(dataDir), ctx.relay.cwd);
  return { ...relay, cpuSeconds: () => ctx.cpuSecondsOf(relay.pid) };
}

/** An HTTP acceptance load: `messages` measured after a tenth more, `concurrency` requests in flight. */
export interface HttpLoad {
  /** Entries in the relay's list (suppressionCsv's): each message names one of them. */
  readonly entries: number;
  readonly messages: number;
  readonly concurrency: number;
}

/**
 * Messages accepted per second over HTTP (POST /v1/messages from
 * bench@sender.test, 10 recipients each, one of them on the list, sent a day
 * ahead), and the relay's CPU per message.
 */
export async function acceptOverHttp(
  { entries, messages, concurrency }: HttpLoad,
  relay: { url: string; token?: string; cpuSeconds: () => number },
  round: number,
): Promise<{ rate: number; cpuMs: number; suppressed: number }> {
  const { url, token = TOKEN } = relay;
  const sendAt = new Date(Date.now() + 86_400_000).toISOString();
  let next = 0;
  const post = async (i: number) => {
    const rcpt_to = [suppressedAddress((i * 7919 + round) % entries)];
    for (let r = 1; r < 10; r++) rcpt_to.push(`r${round}-${i}-${r}@open${r}.test`);
    const response = await fetch(`${url}/v1/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
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
      Array.from({ length: concurrency }, async () => {
        while (next < until) {
          const found = await post(next++);
          hits += found;
        }
      }),
    );
  // A warm-up tenth, not measured: the JIT, the database's first pages.
  const warmup = Math.ceil(messages / 10);
  await load(warmup);
  hits = 0;
  const t0 = performance.now();
  const cpu0 = relay.cpuSeconds();
  await load(warmup + messages);
  const cpuMs = ((relay.cpuSeconds() - cpu0) * 1000) / messages;
  return { rate: messages / ((performance.now() - t0) / 1000), cpuMs, suppressed: hits };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Import, export, and acceptance with the list loaded beside acceptance with none. */
export async function suppressionsBench(ctx: SuppressionsBenchContext): Promise<SuppressionsResult> {
  const { entries, rounds, run } = ctx;
  mkdirSync(run, { recursive: true });
  const csv = join(run, "suppressions.csv");
  await suppressionCsv(csv, entries);
  const full = join(run, "full");
  const empty = join(run, "empty");
  await cli(ctx, empty, ["migrate"]);
  const imported = await cli(ctx, full, ["suppressions", "import", csv]);
  ctx.log(
    `suppressions import ${entries}: ${imported.seconds.toFixed(1)} s, peak RSS ${imported.peakMb.toFixed(0)} MB`,
  );
  const exportFile = join(run, "export.csv");
  const exported = await cli(ctx, full, ["suppressions", "export"], exportFile);
  const lines = readFileSync(exportFile, "utf8").split("\n").filter((l) => l !== "").length - 1;
  ctx.log(`suppressions export ${lines}: ${exported.seconds.toFixed(1)} s, peak RSS ${exported.peakMb.toFixed(0)} MB`);
  const rates = { full: [] as number[], empty: [] as number[] };
  const cpuMs = { full: [] as number[], empty: [] as number[] };
  for (let round = 1; round <= rounds; round++) {
    for (const which of round % 2 ? (["empty", "full"] as const) : (["full", "empty"] as const)) {
      const relay = await serve(ctx, which === "full" ? full : empty);
      try {
        const measured = await acceptOverHttp(ctx, relay, round);
        rates[which].push(measured.rate);
        cpuMs[which].push(measured.cpuMs);
        ctx.log(
          `suppressions accept round ${round} ${which === "full" ? "with the list" : "empty list"}: ` +
            `${measured.rate.toFixed(0)} msg/s, ${measured.cpuMs.toFixed(2)} ms CPU a message ` +
            `(${measured.suppressed} recipients suppressed)`,
        );
      } finally {
        await relay.stop();
      }
    }
  }
  return {
    entries,
    messages: ctx.messages,
    imported: { seconds: imported.seconds, peakMb: imported.peakMb },
    exported: { seconds: exported.seconds, peakMb: exported.peakMb, lines },
    rates,
    cpuMs,
    ratio: median(rates.full) / median(rates.empty),
    cpuRatio: median(cpuMs.empty) / median(cpuMs.full),
  };
}

/** The phase's lines in the bench's report, and its ratio. */
export function suppressionsReport(r: SuppressionsResult): { lines: string[]; ratio: Record<string, unknown> } {
  const n = r.entries.toLocaleString("en");
  return {
    lines: [
      "",
      `Suppression list (relay only), ${n} entries:`,
      `  import: ${r.imported.seconds.toFixed(1)} s, peak RSS ${r.imported.peakMb.toFixed(0)} MB`,
      `  export: ${r.exported.seconds.toFixed(1)} s (${r.exported.lines.toLocaleString("en")} lines), peak RSS ${
        r.exported.peakMb.toFixed(0)
      } MB`,
      `  acceptance over HTTP, 10 recipients a message, one suppressed: ${
        median(r.rates.full).toFixed(0)
      } msg/s with ` +
      `the list, ${median(r.rates.empty).toFixed(0)} msg/s with none: ${
        (r.ratio * 100).toFixed(1)
      }% (target: within 5%)`,
      `  the relay's CPU a message: ${median(r.cpuMs.full).toFixed(2)} ms with the list, ${
        median(r.cpuMs.empty).toFixed(2)
      } ms with none: the list's rate by CPU ${(r.cpuRatio * 100).toFixed(1)}%`,
    ],
    ratio: {
      case: "suppressions",
      entries: r.entries,
      accept_with_list_over_empty: r.ratio,
      cpu_rate_with_list_over_empty: r.cpuRatio,
      import_s: r.imported.seconds,
      export_s: r.exported.seconds,
    },
  };
}
