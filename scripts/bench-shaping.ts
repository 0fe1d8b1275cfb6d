/**
 * The shaping phase of scripts/bench (issue 13), relay only:
 *
 *   1. what the rules cost: the end-to-end 5 KB x 20 case with the shipped
 *      rules alone (no message or connection rate in force) and with an
 *      operator file that paces every message to bench.test at rates far
 *      above what the load reaches (100,000/s, 100,000/min connections), so
 *      every message goes through the gates and none is held back; the two
 *      take turns, and the medians are compared;
 *   2. a rate-limited backlog: 1,000,000 recipients (100,000 transactions)
 *      queued and due for limited.test, which the operator file limits to
 *      100 messages an hour. Reported: how long the relay takes to hand the
 *      backlog back to the queue with its turns (once, at start), its CPU
 *      while the backlog waits, and the end-to-end 5 KB x 20 rate to
 *      another destination with the backlog waiting, beside the same run on
 *      a relay with an empty queue and on one with the same million queued
 *      but not due (a queue that deep costs something by itself, issue 4:
 *      that is the baseline for what waiting at a rate costs).
 */
import { createClient } from "@libsql/client";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ShapingBenchContext {
  readonly run: string;
  readonly rounds: number;
  readonly backlog: number;
  readonly waitS: number;
  /** Start the relay (fresh data directory) with this environment on top of the bench's; with a pre-filled queue. */
  start(tag: string, env: Record<string, string>, prefill?: { n: number; args: string[] }): Promise<string>;
  stop(): Promise<void>;
  cpuSeconds(): number;
  /** One measured end-to-end 5 KB x 20 run against the running relay (a fresh sink, warmed up first). */
  e2e(tag: string): Promise<{ rate: number; cpuMsPerMsg?: number; error?: string; capped: boolean }>;
  log(line: string): void;
}

export interface ShapingRow {
  readonly variant: "shipped rules" | "paced, not binding";
  readonly round: number;
  readonly rate: number;
  readonly cpuMsPerMsg?: number;
  readonly error?: string;
}

export interface BacklogResult {
  readonly queued: number;
  readonly handBackS?: number;
  /** The relay's CPU while the backlog waits, as a share of one core. */
  readonly waitingCpuShare?: number;
  readonly waitS: number;
  readonly rateWithBacklog?: number;
  readonly rateWithout?: number;
  /** The same number of recipients queued, not due, no rate: the cost of the queue's depth alone. */
  readonly rateNotDue?: number;
  readonly error?: string;
}

export interface ShapingResult {
  readonly rows: ShapingRow[];
  readonly backlog?: BacklogResult;
}

const PACED = "domains:\n  bench.test:\n    message_rate: 100000/s\n    connection_rate: 100000/min\n";
const LIMITED = "domains:\n  limited.test:\n    message_rate: 100/h\n";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function shapingBench(ctx: ShapingBenchContext): Promise<ShapingResult> {
  const paced = join(ctx.run, "shaping-paced.yaml");
  writeFileSync(paced, PACED);
  const rows: ShapingRow[] = [];
  for (let round = 1; round <= ctx.rounds; round++) {
    const variants = [
      ["shipped rules", {}],
      ["paced, not binding", { RELAY_SHAPING_FILE: paced }],
    ] as const;
    for (const [variant, env] of round % 2 ? variants : [...variants].reverse()) {
      try {
        await ctx.start(`shaping-${round}`, env);
        const r = await ctx.e2e(`shaping-${variant}-${round}`);
        rows.push({ variant, round, rate: r.rate, cpuMsPerMsg: r.cpuMsPerMsg, error: r.error });
        ctx.log(`shaping ${variant}, round ${round}: ${r.rate.toFixed(0)} msg/s${r.capped ? " [time cap]" : ""}`);
      } finally {
        await ctx.stop();
      }
    }
  }
  return { rows, backlog: await rateLimitedBacklog(ctx) };
}

async function rateLimitedBacklog(ctx: ShapingBenchContext): Promise<BacklogResult> {
  const limited = join(ctx.run, "shaping-limited.yaml");
  writeFileSync(limited, LIMITED);
  const base = { queued: ctx.backlog, waitS: ctx.waitS };
  const args = ["--domain", "limited.test", "--per-message", "10", "--no-events"];
  let rateWithout: number | undefined;
  let rateNotDue: number | undefined;
  try {
    await ctx.start("backlog-none", { RELAY_SHAPING_FILE: limited });
    rateWithout = (await ctx.e2e("backlog-none")).rate;
    await ctx.stop();
    await ctx.start("backlog-not-due", { RELAY_SHAPING_FILE: limited }, { n: ctx.backlog, args });
    rateNotDue = (await ctx.e2e("backlog-not-due")).rate;
  } finally {
    await ctx.stop();
  }
  const done = { ...base, rateWithout, rateNotDue };
  try {
    const dueNow = [...args, "--due-now"];
    const data = await ctx.start("backlog", { RELAY_SHAPING_FILE: limited }, { n: ctx.backlog, args: dueNow });
    const t0 = performance.now();
    const db = createClient({ url: `file:${join(data, "relay.db")}` });
    try {
      // Handed back: every recipient of limited.test has its turn, but the few in memory or sent.
      const waiting = async () =>
        Number(
          (await db.execute(
            "SELECT count(*) AS n FROM recipients WHERE domain = 'limited.test' AND state = 'queued' AND turn_at IS NULL",
          )).rows[0]!.n,
        );
      const capMs = 15 * 60_000;
      while ((await waiting()) > 100 && performance.now() - t0 < capMs) await sleep(1000);
      const handBackS = (performance.now() - t0) / 1000;
      if ((await waiting()) > 100) return { ...done, error: "not handed back within 15 minutes" };
      ctx.log(`shaping backlog of ${ctx.backlog.toLocaleString("en")} handed back in ${handBackS.toFixed(1)} s`);
      const cpu0 = ctx.cpuSeconds();
      await sleep(ctx.waitS * 1000);
      const waitingCpuShare = (ctx.cpuSeconds() - cpu0) / ctx.waitS;
      const rateWithBacklog = (await ctx.e2e("backlog")).rate;
      ctx.log(
        `shaping backlog waiting: ${(waitingCpuShare * 100).toFixed(2)}% of a core; 5 KB x 20 elsewhere ${
          rateWithBacklog.toFixed(0)
        } msg/s (empty queue: ${rateWithout?.toFixed(0)} msg/s; as many queued, not due: ${
          rateNotDue?.toFixed(0)
        } msg/s)`,
      );
      return { ...done, handBackS, waitingCpuShare, rateWithBacklog };
    } finally {
      db.close();
    }
  } catch (error) {
    return { ...done, error: error instanceof Error ? error.message : String(error) };
  } finally {
    await ctx.stop();
  }
}

const median = (values: number[]): number | undefined => {
  if (!values.length) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const fmt = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(d));

/** The report's section, and the ratios for the JSON. */
export function shapingReport(result: ShapingResult): { lines: string[]; ratio: Record<string, unknown> } {
  const rate = (variant: ShapingRow["variant"]) =>
    median(result.rows.filter((r) => r.variant === variant && !r.error).map((r) => r.rate));
  const shipped = rate("shipped rules");
  const pacedRate = rate("paced, not binding");
  const b = result.backlog;
  const lines = [
    `### Shaping (issue 13): end to end 5 KB x 20 sessions, median of ${
      Math.max(0, ...result.rows.map((r) => r.round))
    } rounds`,
    "",
    "| run | msg/s |",
    "| --- | ---: |",
    `| shipped rules, no rate in force | ${fmt(shipped)} |`,
    `| every message paced (100,000/s), none held back | ${fmt(pacedRate)} |`,
    `| paced / shipped | ${fmt(pacedRate && shipped ? pacedRate / shipped : undefined, 3)} |`,
    "",
  ];
  if (b) {
    lines.push(
      `Rate-limited backlog: ${b.queued.toLocaleString("en")} recipients due for a destination limited to 100/h: ${
        b.error ??
          `handed back to the queue with their turns in ${fmt(b.handBackS, 1)} s, then the relay used ${
            fmt((b.waitingCpuShare ?? NaN) * 100, 2)
          }% of a core over ${b.waitS} s of waiting; 5 KB x 20 to another destination ${
            fmt(b.rateWithBacklog)
          } msg/s with the backlog waiting, ${fmt(b.rateNotDue)} msg/s with as many queued but not due (${
            fmt(b.rateWithBacklog && b.rateNotDue ? b.rateWithBacklog / b.rateNotDue : undefined, 3)
          }×), ${fmt(b.rateWithout)} msg/s with an empty queue`
      }.`,
      "",
    );
  }
  return {
    lines,
    ratio: {
      phase: "shaping",
      shipped_rate: shipped,
      paced_rate: pacedRate,
      paced_over_shipped: pacedRate && shipped ? pacedRate / shipped : undefined,
      backlog_hand_back_s: b?.handBackS,
      backlog_waiting_cpu_share: b?.waitingCpuShare,
      backlog_rate_with: b?.rateWithBacklog,
      backlog_rate_without: b?.rateWithout,
      backlog_rate_not_due: b?.rateNotDue,
    },
  };
}
