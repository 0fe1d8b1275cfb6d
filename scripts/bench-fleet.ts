/**
 * The fleet phase of scripts/bench (issue 17), relay only, on loopback: what
 * reading the shared state through the embedded replica costs a node, beside
 * a node alone reading it from its own database, and acceptance per
 * durability. Each variant below is one column of the report; each runs on
 * a fresh data directory, a fleet node on a fresh sqld (from .cache/sqld,
 * which scripts/bench installs) started here on loopback. Before the relay
 * starts, `relay suppressions import` loads a list of `entries` addresses
 * and `relay domains add D --algorithm both` gives sender.test (the HTTP
 * load's From) and bench.test (smtp-source's) an RSA-2048 and an Ed25519
 * key, so every message is checked against the list and signed twice. Then,
 * against the running relay:
 *
 *   1. one lookup's latency (scripts/bench-fleet-lookups.ts, in its own
 *      process, the relay idle): the suppression check of a message to 10
 *      recipients and the DKIM key lookup of a domain, through the node's
 *      database alone, through a replica of the same sqld on a fleet node;
 *   2. acceptance over HTTP: 10 recipients a message, one of them on the
 *      list, sent a day ahead (scripts/bench-suppressions.ts's load);
 *   3. acceptance over SMTP: smtp-source, 5 KB x 20 sessions, after a
 *      warm-up (the harness's load), deliveries parked.
 *
 * A variant whose configuration the relay refuses (exit status 2, as
 * RELAY_DURABILITY=replicated is until it is built) is reported so in its
 * column. Rounds take the variants in a rotating order; the report gives
 * medians.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { LookupTimes } from "./bench-fleet-lookups.ts";
import { freePort, ROOT } from "./bench-serve.ts";
import { acceptOverHttp, suppressionCsv } from "./bench-suppressions.ts";
import { SQLD_BINARY, sqldInstalled } from "./install-sqld.ts";
import { spoolDirOf } from "../src/queue/spool.ts";

interface Variant {
  /** A fleet node (RELAY_SHARED_DB_URL), or a node alone. */
  readonly shared: boolean;
  readonly durability: "local" | "replicated";
}

/**
 * The report's columns, in order, one a line: a variant added here is
 * measured and reported beside the others. The first is what the others
 * are compared with.
 */
const VARIANTS: readonly Variant[] = [
  { shared: false, durability: "local" },
  { shared: true, durability: "local" },
  { shared: true, durability: "replicated" },
];

const label = (v: Variant) => `${v.shared ? "fleet node" : "alone"}, ${v.durability}`;

/** The sending domains given keys: the HTTP load's From and smtp-source's. */
const SIGNED_DOMAINS = ["sender.test", "bench.test"];

export interface FleetBenchContext {
  /** Where the phase's files go. */
  readonly run: string;
  readonly bun: string;
  /** The relay as the harness runs it: its lookup script runs from the same source when it has one. */
  readonly relay: { readonly cwd: string };
  readonly entries: number;
  readonly httpMessages: number;
  readonly lookupCalls: number;
  readonly rounds: number;
  /** HTTP requests in flight. */
  readonly concurrency: number;
  /** The relay's HTTP API, and its admin token. */
  readonly http: string;
  readonly adminToken: string;
  /**
   * Start the relay on a fresh data directory with `env` on top of the
   * harness's, after running the relay `commands` there with the same
   * environment; resolves once it is ready, with its data directory, or with
   * its refusal of that configuration (a command's exit status 2).
   */
  start(tag: string, env: Record<string, string>, commands: string[][]): Promise<Started>;
  stop(): Promise<void>;
  /** utime + stime of the running relay, all its threads, in seconds. */
  cpuSeconds(): number;
  /** smtp-source 5 KB x 20 sessions against the running relay: a warm-up, then the measured load. */
  smtpAccept(): Promise<SmtpAccepted>;
  /** Start a server the harness stops at the end, also on failure; its output into `out`. */
  spawn(cmd: string, args: string[], o: { cwd: string; out: string }): ChildProcess;
  kill(child: ChildProcess): Promise<void>;
  log(line: string): void;
}

type Started = { readonly dataDir: string } | { readonly refused: string };

interface SmtpAccepted {
  readonly rate: number;
  /** The relay's CPU per message, all its threads, in ms. */
  readonly cpuMs: number;
  /** The relay's CPU seconds by thread name over the measured load. */
  readonly threads: Record<string, number>;
  readonly capped: boolean;
  readonly error?: string;
}

interface Lookups {
  readonly shared: boolean;
  readonly suppression: LookupTimes & { readonly suppressedPerCall: number };
  readonly dkim: LookupTimes & { readonly keys: number };
}

export interface FleetRun {
  readonly variant: string;
  readonly shared: boolean;
  readonly durability: string;
  readonly round: number;
  /** Why the relay refused the variant's configuration; nothing else is then measured. */
  readonly refused?: string;
  readonly lookups?: Lookups;
  readonly http?: { readonly rate: number; readonly cpuMs: number; readonly suppressed: number };
  readonly smtp?: SmtpAccepted;
  /** DKIM-Signature fields per message the relay accepted (HTTP and SMTP, warm-ups included): 2 when all were signed. */
  readonly signaturesPerMessage?: number;
}

export interface FleetResult {
  readonly entries: number;
  readonly httpMessages: number;
  readonly variants: string[];
  readonly runs: FleetRun[];
}

/** sqld on a free loopback port, its data in `dir`; resolves once GET /health answers. */
async function startSqld(ctx: FleetBenchContext, dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  if (!sqldInstalled()) {
    throw new Error(`sqld is not installed at ${SQLD_BINARY}: run node_modules/.bin/bun scripts/install-sqld.ts`);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const url = `http://127.0.0.1:${await freePort()}`;
  const args = ["--db-path", join(dir, "data.sqld"), "--http-listen-addr", url.slice("http://".length), "--no-welcome"];
  const child = ctx.spawn(SQLD_BINARY, args, { cwd: dir, out: join(dir, "sqld.log") });
  const stop = async () => {
    await ctx.kill(child);
    rmSync(dir, { recursive: true, force: true });
  };
  for (const until = performance.now() + 30_000; performance.now() < until;) {
    if (child.exitCode !== null) break;
    if (await fetch(`${url}/health`).then((r) => r.ok, () => false)) return { url, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`sqld did not answer at ${url} (exit ${child.exitCode}); see ${join(dir, "sqld.log")}`);
}

/** scripts/bench-fleet-lookups.ts with a relay's environment: from the relay's source when it has the script. */
function lookups(ctx: FleetBenchContext, env: Record<string, string>): Promise<Lookups> {
  const own = join(ctx.relay.cwd, "scripts/bench-fleet-lookups.ts");
  const script = existsSync(own) ? own : join(ROOT, "scripts/bench-fleet-lookups.ts");
  const args = [script, "--calls", String(ctx.lookupCalls), "--entries", String(ctx.entries)];
  return new Promise((resolve, reject) =>
    execFile(ctx.bun, [...args, "--domain", SIGNED_DOMAINS[0]!], {
      cwd: ctx.relay.cwd,
      // libSQL's replica logs to stdout unless told not to (serve says so too); the JSON is the last line.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, RELAY_LOG_LEVEL: "warn", RUST_LOG: "off", ...env },
      timeout: 300_000,
    }, (error, stdout, stderr) => {
      if (error) reject(new Error(`bench-fleet-lookups: ${error.message}\n${stderr.slice(-2000)}`));
      else resolve(JSON.parse(stdout.trim().split("\n").pop()!) as Lookups);
    })
  );
}

/**
 * DKIM-Signature fields per accepted message in a data directory's spool,
 * where each body starts with the fields ingress added: the signatures
 * (keys read from where the variant keeps them), then the relay's Received.
 */
function signaturesPerMessage(dataDir: string): number {
  const spool = spoolDirOf(dataDir);
  let [signatures, messages] = [0, 0];
  for (const file of readdirSync(spool)) {
    const text = readFileSync(join(spool, file), "latin1");
    signatures += text.match(/(?:^|\r\n)DKIM-Signature: /g)?.length ?? 0;
    messages += text.match(/\r\n\tby [^ ]+ \(relay\) with /g)?.length ?? 0;
  }
  return signatures / Math.max(1, messages);
}

/** One variant, one round: a fresh data directory (and sqld), the lookups, then HTTP and SMTP acceptance. */
async function measure(ctx: FleetBenchContext, csv: string, variant: Variant, round: number): Promise<FleetRun> {
  const tag = `fleet-${variant.shared ? "node" : "alone"}-${variant.durability}-r${round}`;
  const base = { variant: label(variant), shared: variant.shared, durability: variant.durability, round };
  const sqld = variant.shared ? await startSqld(ctx, join(ctx.run, `sqld-${tag}`)) : undefined;
  try {
    const env: Record<string, string> = {
      RELAY_DURABILITY: variant.durability,
      RELAY_SENDER_POLICY: "any",
      ...(sqld ? { RELAY_SHARED_DB_URL: sqld.url } : {}),
    };
    const started = await ctx.start(tag, env, [
      ["suppressions", "import", csv],
      ...SIGNED_DOMAINS.map((d) => ["domains", "add", d, "--algorithm", "both"]),
    ]);
    if ("refused" in started) {
      ctx.log(`fleet ${base.variant}: not built yet (${started.refused})`);
      return { ...base, refused: started.refused };
    }
    try {
      // Alone, the node's database is the relay's own file (read beside it, as a CLI command does); a fleet
      // node's replica file is the running relay's, so the script keeps a replica of the same server of its own.
      const dataDir = sqld ? join(ctx.run, `lookups-${tag}`) : started.dataDir;
      const looked = await lookups(ctx, { ...env, RELAY_DATA_DIR: dataDir });
      if (sqld) rmSync(dataDir, { recursive: true, force: true });
      // A lookup that finds nothing is quick: numbers from a setup that went wrong must not be reported.
      if (looked.suppression.suppressedPerCall !== 1 || looked.dkim.keys !== 2) {
        throw new Error(
          `fleet ${base.variant}: the lookups found ${looked.suppression.suppressedPerCall} suppressed a call ` +
            `and ${looked.dkim.keys} DKIM keys, not 1 and 2`,
        );
      }
      const relay = { url: ctx.http, token: ctx.adminToken, cpuSeconds: () => ctx.cpuSeconds() };
      const http = await acceptOverHttp(
        { entries: ctx.entries, messages: ctx.httpMessages, concurrency: ctx.concurrency },
        relay,
        round,
      );
      const smtp = await ctx.smtpAccept();
      const signatures = signaturesPerMessage(started.dataDir);
      ctx.log(
        `fleet ${base.variant} round ${round}: lookups p50 ${looked.suppression.p50Us.toFixed(0)} µs (suppression), ` +
          `${looked.dkim.p50Us.toFixed(0)} µs (DKIM keys); HTTP ${http.rate.toFixed(0)} msg/s ` +
          `(${http.suppressed} suppressed), SMTP ${smtp.rate.toFixed(0)} msg/s${
            smtp.error ? ` (${smtp.error})` : ""
          }; ` +
          `${signatures.toFixed(2)} DKIM signatures a message`,
      );
      return { ...base, lookups: looked, http, smtp, signaturesPerMessage: signatures };
    } finally {
      await ctx.stop();
    }
  } finally {
    await sqld?.stop();
  }
}

export async function fleetBench(ctx: FleetBenchContext): Promise<FleetResult> {
  mkdirSync(ctx.run, { recursive: true });
  const csv = join(ctx.run, "suppressions.csv");
  await suppressionCsv(csv, ctx.entries);
  const runs: FleetRun[] = [];
  for (let round = 1; round <= ctx.rounds; round++) {
    for (let i = 0; i < VARIANTS.length; i++) {
      runs.push(await measure(ctx, csv, VARIANTS[(i + round - 1) % VARIANTS.length]!, round));
    }
  }
  return { entries: ctx.entries, httpMessages: ctx.httpMessages, variants: VARIANTS.map(label), runs };
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
const int = (n: number | undefined) => (n === undefined ? "–" : Math.round(n).toLocaleString("en"));
const defined = (xs: (number | undefined)[]) => xs.filter((x): x is number => x !== undefined);

/** The phase's lines in the bench's report, and its ratios to the first column. */
export function fleetReport(r: FleetResult): { lines: string[]; ratio: Record<string, unknown> } {
  const of = (variant: string) => r.runs.filter((x) => x.variant === variant);
  const refused = (variant: string) => of(variant).length > 0 && of(variant).every((x) => x.refused !== undefined);
  const rounds = Math.max(...r.runs.map((x) => x.round));
  const medianOf = (variant: string, pick: (x: FleetRun) => number | undefined) =>
    median(defined(of(variant).map(pick)));
  /** A row of one value per variant: `show` of its runs, or why there are none. */
  const row = (name: string, show: (runs: FleetRun[]) => string) =>
    `| ${name} | ${
      r.variants.map((v) => (refused(v) ? "not built yet" : show(of(v).filter((x) => !x.refused)))).join(" | ")
    } |`;
  const header = (what: string) => [
    `| ${what} | ${r.variants.join(" | ")} |`,
    `| --- |${" ---: |".repeat(r.variants.length)}`,
  ];
  /** The median rate over the rounds (lowest–highest), and the median CPU per message. */
  const acceptance =
    (pick: (x: FleetRun) => { rate: number; cpuMs: number; capped?: boolean } | undefined) => (runs: FleetRun[]) => {
      const measured = runs.flatMap((x) => {
        const m = pick(x);
        return m ? [m] : [];
      });
      if (!measured.length) return "–";
      const rates = measured.map((m) => m.rate);
      const range = rates.length > 1 ? ` (${int(Math.min(...rates))}–${int(Math.max(...rates))})` : "";
      const capped = measured.some((m) => m.capped) ? "*" : "";
      return `${int(median(rates))}${capped}${range}, ${median(measured.map((m) => m.cpuMs))!.toFixed(2)} ms CPU`;
    };
  const lookup = (pick: (l: Lookups) => LookupTimes) => (runs: FleetRun[]) => {
    const times = runs.flatMap((x) => (x.lookups ? [pick(x.lookups)] : []));
    if (!times.length) return "–";
    const at = (k: keyof LookupTimes) => int(median(times.map((t) => t[k])));
    return `${at("p50Us")} / ${at("p99Us")} (${at("meanUs")})`;
  };
  const [first, ...others] = r.variants;
  /** Each other variant's median over the first's (`inverse`: the first's over the variant's, for costs). */
  const over = (pick: (x: FleetRun) => number | undefined, inverse = false) =>
    Object.fromEntries(others.map((v) => {
      const [a, b] = inverse
        ? [medianOf(first!, pick), medianOf(v, pick)]
        : [medianOf(v, pick), medianOf(first!, pick)];
      return [v, a !== undefined && b ? a / b : undefined];
    }));
  const ratios = {
    http_rate: over((x) => x.http?.rate),
    http_rate_by_cpu: over((x) => x.http?.cpuMs, true),
    smtp_rate: over((x) => x.smtp?.rate),
    smtp_rate_by_cpu: over((x) => x.smtp?.cpuMs, true),
  };
  const x2 = (n: number | undefined) => (n === undefined ? "–" : `${n.toFixed(2)}×`);
  const ratioLines = others.filter((v) => !refused(v)).map((v) =>
    `- ${v} over ${first}: HTTP ${x2(ratios.http_rate[v])} (by CPU a message ${x2(ratios.http_rate_by_cpu[v])}), ` +
    `SMTP ${x2(ratios.smtp_rate[v])} (by CPU a message ${x2(ratios.smtp_rate_by_cpu[v])})`
  );
  return {
    lines: [
      "",
      `### Fleet (issue 17): shared state through the embedded replica, beside a node alone${
        rounds > 1 ? ` (median of ${rounds} rounds, lowest–highest in brackets)` : ""
      }`,
      "",
      `${r.entries.toLocaleString("en")} suppressions; RSA-2048 + Ed25519 keys for ${
        SIGNED_DOMAINS.join(" and ")
      } (every message signed twice); a fleet node reads them from its replica of sqld on loopback.`,
      "",
      ...header("acceptance, msg/s, and the relay's CPU a message"),
      row(
        `HTTP, 10 recipients (1 on the list), ${r.httpMessages.toLocaleString("en")} messages`,
        acceptance((x) => x.http),
      ),
      row(
        "SMTP, 5 KB × 20 sessions",
        acceptance((x) => x.smtp && { ...x.smtp, capped: x.smtp.capped || !!x.smtp.error }),
      ),
      row("DKIM signatures a message (spool)", (runs) => {
        const n = median(defined(runs.map((x) => x.signaturesPerMessage)));
        return n === undefined ? "–" : n.toFixed(2);
      }),
      "",
      ...ratioLines,
      "",
      ...header("one lookup, µs: p50 / p99 (mean)"),
      row("suppression check, 10 recipients (SuppressionStore.lookup)", lookup((l) => l.suppression)),
      row("DKIM keys of a domain (DomainStore.signingKeys, uncached)", lookup((l) => l.dkim)),
      "",
      "Timed one call at a time in a process of its own with the relay idle (scripts/bench-fleet-lookups.ts); " +
      "at ingress the relay caches a domain's keys for 5 s, so the DKIM lookup runs at most once per 5 s per domain.",
      "",
    ],
    ratio: { phase: "fleet", entries: r.entries, over: first, ...ratios },
  };
}
