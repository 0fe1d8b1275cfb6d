/**
 * The milter phase of scripts/bench (issue 18): acceptance with rspamd in
 * the path, the relay beside Postfix at the same rspamd in the same run.
 * One private rspamd (scripts/rspamd.ts: its proxy worker in milter mode,
 * self_scan, stock rules) is started for the phase; then each variant below
 * starts fresh, deliveries parked, and takes the harness's acceptance load
 * (smtp-source, a warm-up, then a measured load sized from its rate):
 *
 *   relay             no RELAY_MILTERS
 *   relay + rspamd    RELAY_MILTERS="inet:127.0.0.1:PORT default=tempfail"
 *   Postfix           no milter
 *   Postfix + rspamd  smtpd_milters = inet:127.0.0.1:PORT,
 *                     milter_protocol = 6, milter_default_action = tempfail
 *
 * Postfix runs with smtpd_peername_lookup = no, as the relay looks no client
 * name up: given the name "localhost" (/etc/hosts), rspamd looks the client's
 * HELO and name up in its DNS lists, and here every such query waits out its
 * timeout (0.2 s): the phase would measure those timeouts, not the MTAs.
 * The report gives rspamd's own time and DNS queries a scan from its log, so
 * that such a difference shows.
 *
 * So that a number cannot measure a bypass, each run first sends one GTUBE
 * message (smtp-source -F): a variant with rspamd must refuse it with a 5xx
 * reply, one without must accept it; and rspamd's log must show at least
 * one scan for every message the variant acknowledged (none without the
 * milter). A run that fails either check is reported as an error, not as a
 * rate. Rounds take the variants in a rotating order; the report gives
 * medians, each system with rspamd over itself without, and the relay over
 * Postfix.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RSPAMD, RSPAMD_SCAN_LINE, rspamdInstalled, startRspamd } from "./rspamd.ts";

export type MilterSystem = "relay" | "postfix";

interface Variant {
  readonly system: MilterSystem;
  /** Whether the system scans through rspamd. */
  readonly milter: boolean;
}

const NAME: Record<MilterSystem, string> = { relay: "relay", postfix: "Postfix" };
const label = (v: Variant) => `${NAME[v.system]}${v.milter ? " + rspamd" : ""}`;

/** The spam test pattern rspamd refuses (554 5.7.1 Gtube pattern). */
const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/** One measured acceptance load, as the harness reports it. */
export interface Accepted {
  readonly sent: number;
  readonly seconds: number;
  readonly rate: number;
  readonly capped: boolean;
  readonly error?: string;
  /** Messages the warm-ups had acknowledged before the measured load. */
  readonly warmupSent: number;
  /** The relay's CPU per measured message, all its threads, in ms. */
  readonly cpuMsPerMsg?: number;
}

export interface MilterBenchContext {
  /** Where the phase's files go. */
  readonly run: string;
  readonly systems: readonly MilterSystem[];
  readonly rounds: number;
  /** The load's message size and sessions, for the report (accept() sends them). */
  readonly kb: number;
  readonly sessions: number;
  /**
   * Start `system` fresh, deliveries parked, scanning every message through
   * the milter at `milter` ("inet:127.0.0.1:PORT") or through none; resolves
   * with its SMTP port once it greets.
   */
  start(system: MilterSystem, milter: string | undefined, tag: string): Promise<number>;
  stop(): Promise<void>;
  /** On the started system: a warm-up, then the measured load. */
  accept(system: MilterSystem, tag: string, round: number): Promise<Accepted>;
  /** utime + stime of a process, in seconds. */
  cpuSecondsOf(pid: number): number;
  log(line: string): void;
}

export interface MilterRun extends Partial<Accepted> {
  readonly variant: string;
  readonly system: MilterSystem;
  readonly milter: boolean;
  readonly round: number;
  /** What the variant answered to GTUBE: its refusal, or "accepted". */
  readonly gtube?: string;
  /** rspamd's scans over the run (GTUBE, warm-ups, measured load) and the messages the variant acknowledged in it. */
  readonly scans?: number;
  readonly acknowledged?: number;
  /** rspamd's CPU (all its processes) per scan over the run, in ms. */
  readonly rspamdCpuMsPerScan?: number;
  /** rspamd's own time a scan, as its log gives it: the median over the run, in ms. */
  readonly rspamdMsPerScan?: number;
  /** The DNS queries rspamd made a scan (RBL and URL lists, to a closed port here), the mean over the run. */
  readonly rspamdDnsPerScan?: number;
}

export interface MilterResult {
  readonly rspamd: string;
  readonly kb: number;
  readonly sessions: number;
  readonly variants: string[];
  readonly runs: MilterRun[];
}

/** rspamd's CPU seconds: its main process and its workers (children). */
function rspamdCpuSeconds(ctx: MilterBenchContext, pid: number): number {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(
      Number,
    );
  } catch {
    /* the kernel does not list them: the main process alone */
  }
  let seconds = 0;
  for (const p of [pid, ...children]) {
    try {
      seconds += ctx.cpuSecondsOf(p);
    } catch {
      /* a worker that ended */
    }
  }
  return seconds;
}

/** smtp-source sending `file` once to 127.0.0.1:port: its exit status and the last line it printed on stderr. */
function sendFile(port: number, file: string): { status: number; said: string } {
  const r = spawnSync("smtp-source", [
    "-s",
    "1",
    "-m",
    "1",
    "-F",
    file,
    "-M",
    "client.bench.test",
    "-f",
    "sender@bench.test",
    "-t",
    "rcpt@example.net",
    `127.0.0.1:${port}`,
  ], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? 128, said: (r.stderr ?? "").trim().split("\n").pop() ?? "" };
}

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

/** One variant, one round: a fresh start, the GTUBE check, the load, and rspamd's scans over it. */
async function measure(
  ctx: MilterBenchContext,
  rspamd: { address: string; pid: number; scans: () => RegExpExecArray[] },
  gtubeFile: string,
  variant: Variant,
  round: number,
): Promise<MilterRun> {
  const tag = `milter-${variant.system}-${variant.milter ? "rspamd" : "none"}-r${round}`;
  const base = { variant: label(variant), system: variant.system, milter: variant.milter, round };
  try {
    const port = await ctx.start(variant.system, variant.milter ? rspamd.address : undefined, tag);
    const [before, cpu0] = [rspamd.scans().length, rspamdCpuSeconds(ctx, rspamd.pid)];
    const probe = sendFile(port, gtubeFile);
    const refused = probe.status !== 0 && /\b5\d\d[ -]/.test(probe.said);
    const gtube = probe.status === 0 ? "accepted" : probe.said.replace(/^smtp-source: fatal: /, "");
    if (variant.milter ? !refused : probe.status !== 0) {
      throw new Error(`GTUBE: ${gtube} (expected ${variant.milter ? "a 5xx refusal from rspamd" : "acceptance"})`);
    }
    const accepted = await ctx.accept(variant.system, tag, round);
    const acknowledged = accepted.warmupSent + accepted.sent + (refused ? 0 : 1);
    // rspamd logs a scan as it answers: the last few may reach its log a moment after the client's 250.
    const wanted = variant.milter ? acknowledged : 0;
    for (let i = 0; i < 50 && rspamd.scans().length - before < wanted; i++) await sleep(100);
    const lines = rspamd.scans().slice(before);
    const scans = lines.length;
    const cpuMs = (rspamdCpuSeconds(ctx, rspamd.pid) - cpu0) * 1000;
    const run: MilterRun = {
      ...base,
      ...accepted,
      gtube,
      scans,
      acknowledged,
      ...(variant.milter
        ? {
          rspamdCpuMsPerScan: cpuMs / Math.max(1, scans),
          rspamdMsPerScan: median(lines.map((m) => Number(m[1]))),
          rspamdDnsPerScan: lines.reduce((n, m) => n + Number(m[2]), 0) / Math.max(1, scans),
        }
        : {}),
    };
    if (variant.milter ? scans < acknowledged : scans !== 0) {
      const error = `rspamd scanned ${scans} messages while ${base.variant} acknowledged ${acknowledged}`;
      ctx.log(`milter ${base.variant} round ${round}: ERROR ${error}`);
      return { ...run, error };
    }
    ctx.log(
      `milter ${base.variant.padEnd(16)} round ${round}: ${accepted.rate.toFixed(0)} msg/s (${accepted.sent} in ${
        accepted.seconds.toFixed(1)
      } s${accepted.capped ? ", time cap" : ""})${
        accepted.cpuMsPerMsg === undefined ? "" : `, relay ${accepted.cpuMsPerMsg.toFixed(3)} ms CPU/msg`
      }; GTUBE ${gtube}; rspamd ${scans} scans for ${acknowledged} acknowledged${
        run.rspamdCpuMsPerScan === undefined
          ? ""
          : `, ${run.rspamdCpuMsPerScan.toFixed(2)} ms CPU and ${fixed(run.rspamdMsPerScan, 1)} ms a scan (median), ${
            fixed(run.rspamdDnsPerScan, 1)
          } DNS queries a scan`
      }${accepted.error ? ` ERROR ${accepted.error}` : ""}`,
    );
    return run;
  } catch (error) {
    // One run failing (a check, a server that died) is a run with the error, not the end of the phase.
    const message = error instanceof Error ? error.message : String(error);
    ctx.log(`milter ${base.variant} round ${round}: ERROR ${message}`);
    return { ...base, error: message };
  } finally {
    await ctx.stop();
  }
}

export async function milterBench(ctx: MilterBenchContext): Promise<MilterResult> {
  if (!rspamdInstalled()) throw new Error(`the milter phase needs rspamd (Debian package rspamd) at ${RSPAMD}`);
  mkdirSync(ctx.run, { recursive: true });
  const gtubeFile = join(ctx.run, "gtube.eml");
  writeFileSync(gtubeFile, `From: sender@bench.test\nTo: rcpt@example.net\nSubject: GTUBE\n\n${GTUBE}\n`);
  const variants = ctx.systems.flatMap((system) => [false, true].map((milter) => ({ system, milter })));
  const version = spawnSync(RSPAMD, ["--version"], { encoding: "utf8" }).stdout.trim().split("\n")[0] ?? "rspamd";
  const rspamd = await startRspamd();
  ctx.log(`milter rspamd (${version}) at ${rspamd.address}; its log into ${join(ctx.run, "rspamd.log")} at the end`);
  try {
    const scanner = {
      address: rspamd.address,
      pid: rspamd.pid,
      scans: () =>
        rspamd.log().split("\n").map((line) => RSPAMD_SCAN_LINE.exec(line)).filter((m): m is RegExpExecArray =>
          m !== null
        ),
    };
    const runs: MilterRun[] = [];
    for (let round = 1; round <= ctx.rounds; round++) {
      for (let i = 0; i < variants.length; i++) {
        runs.push(await measure(ctx, scanner, gtubeFile, variants[(i + round - 1) % variants.length]!, round));
      }
    }
    return { rspamd: version, kb: ctx.kb, sessions: ctx.sessions, variants: variants.map(label), runs };
  } finally {
    // Kept for a look at what rspamd did (a scan a line, with its time); its own directory goes with it.
    writeFileSync(join(ctx.run, "rspamd.log"), rspamd.log());
    await rspamd.close();
  }
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
const int = (n: number | undefined) => (n === undefined ? "–" : Math.round(n).toLocaleString("en"));
const fixed = (n: number | undefined, digits: number) => (n === undefined ? "–" : n.toFixed(digits));
const x2 = (n: number | undefined) => (n === undefined ? "–" : `${n.toFixed(2)}×`);
const over = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? a / b : undefined);

/** The phase's lines in the bench's report, and its ratios. */
export function milterReport(r: MilterResult): { lines: string[]; ratio: Record<string, unknown> } {
  const measured = (system: MilterSystem, milter: boolean) =>
    r.runs.filter((x) => x.system === system && x.milter === milter && !x.error && x.rate !== undefined);
  const failed = (system: MilterSystem, milter: boolean) =>
    r.runs.find((x) => x.system === system && x.milter === milter && x.error);
  const rate = (system: MilterSystem, milter: boolean) => median(measured(system, milter).map((x) => x.rate!));
  const rounds = Math.max(1, ...r.runs.map((x) => x.round));
  const systems = [...new Set(r.runs.map((x) => x.system))];
  /** The median rate (lowest–highest over the rounds), or the error of a variant that has none. */
  const cell = (system: MilterSystem, milter: boolean) => {
    const runs = measured(system, milter);
    if (!runs.length) return failed(system, milter) ? `error: ${failed(system, milter)!.error}` : "–";
    const rates = runs.map((x) => x.rate!);
    const range = rates.length > 1 ? ` (${int(Math.min(...rates))}–${int(Math.max(...rates))})` : "";
    return `${int(median(rates))}${runs.some((x) => x.capped) ? "*" : ""}${range}`;
  };
  const scanned = (system: MilterSystem) => {
    const runs = measured(system, true);
    const [scans, acknowledged] = [
      runs.reduce((n, x) => n + x.scans!, 0),
      runs.reduce((n, x) => n + x.acknowledged!, 0),
    ];
    const gtube = runs[0]?.gtube ?? "–";
    return runs.length ? `${int(scans)} / ${int(acknowledged)}; GTUBE: ${gtube}` : "–";
  };
  const relayCpu = (milter: boolean) => median(measured("relay", milter).flatMap((x) => x.cpuMsPerMsg ?? []));
  const rspamdMedian = (system: MilterSystem, pick: (x: MilterRun) => number | undefined) =>
    median(measured(system, true).flatMap((x) => pick(x) ?? []));
  const ratio = {
    relay_with_over_postfix_with: over(rate("relay", true), rate("postfix", true)),
    relay_over_postfix_without: over(rate("relay", false), rate("postfix", false)),
    relay_with_over_without: over(rate("relay", true), rate("relay", false)),
    postfix_with_over_without: over(rate("postfix", true), rate("postfix", false)),
  };
  const both = systems.includes("relay") && systems.includes("postfix");
  return {
    lines: [
      "",
      `### Content scanning (issue 18): acceptance with rspamd in the path, ${r.kb} KB × ${r.sessions} sessions, deliveries parked${
        rounds > 1 ? ` (median of ${rounds} rounds, lowest–highest in brackets)` : ""
      }`,
      "",
      `One ${r.rspamd}: its proxy worker in milter mode (self_scan, one process), stock rules, no hyperscan, DNS to a ` +
      'closed loopback port. The relay with RELAY_MILTERS="inet:127.0.0.1:PORT default=tempfail"; Postfix with ' +
      "smtpd_milters at the same address, milter_protocol = 6, milter_default_action = tempfail, and (both Postfix " +
      "variants) smtpd_peername_lookup = no, as the relay looks no client name up.",
      "",
      "| system | without milter, msg/s | with rspamd, msg/s | with / without | rspamd CPU ms a scan | " +
      "rspamd ms a scan (its log, median) | rspamd DNS queries a scan | rspamd scans / messages acknowledged |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
      ...systems.map((system) =>
        `| ${NAME[system]} | ${cell(system, false)} | ${cell(system, true)} | ${
          x2(system === "relay" ? ratio.relay_with_over_without : ratio.postfix_with_over_without)
        } | ${fixed(rspamdMedian(system, (x) => x.rspamdCpuMsPerScan), 2)} | ${
          fixed(rspamdMedian(system, (x) => x.rspamdMsPerScan), 1)
        } | ${fixed(rspamdMedian(system, (x) => x.rspamdDnsPerScan), 1)} | ${scanned(system)} |`
      ),
      "",
      ...(both
        ? [
          `- relay + rspamd over Postfix + rspamd: ${x2(ratio.relay_with_over_postfix_with)}; ` +
          `relay over Postfix, no milter: ${x2(ratio.relay_over_postfix_without)}.`,
        ]
        : []),
      ...(systems.includes("relay")
        ? [
          `- The relay's CPU a message (all its threads): ${fixed(relayCpu(false), 3)} ms without a milter, ` +
          `${fixed(relayCpu(true), 3)} ms with rspamd.`,
        ]
        : []),
      "",
      "Every run first sent one GTUBE message (refused with rspamd, accepted without), and rspamd's log counted " +
      "a scan for every message a variant with rspamd acknowledged (warm-ups included) and none for one without.",
      "",
    ],
    ratio: { phase: "milter", rspamd: r.rspamd, kb: r.kb, sessions: r.sessions, ...ratio },
  };
}
