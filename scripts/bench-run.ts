/**
 * The benchmark proper (scripts/bench sets up the machine, then runs this
 * inside a loopback-only network namespace). Relay, Postfix and Haraka are
 * measured one after another with the same load generator, Postfix's
 * smtp-source: no PIPELINING, one connection per session reused for all its
 * messages (-d), one recipient per message.
 *
 *   1. durable acceptance: 5 KB and 50 KB at 20 and 200 sessions; deliveries
 *      are parked on a loopback port that accepts TCP and never greets, so
 *      only acceptance is measured (each system starts fresh per case). Each
 *      case runs in several rounds, the systems taking turns in a rotating
 *      order, and each system's median is compared: on a shared machine one
 *      load of a few seconds can be 20-30% off from the next;
 *   2. end to end: accepted -> delivered, counted at smtp-sink;
 *   3. the relay's RSS with 1,000 idle SMTP connections;
 *   4. deep queue (relay only, issue 4): the end-to-end 5 KB case again with
 *      10,000 and with 1,000,000 recipients already queued (not due for 30
 *      days, written by scripts/bench-prefill.ts before the relay starts):
 *      msg/s, relay CPU time per message, and start-up time;
 *   5. DKIM cost (relay only, issue 5): signing rate on one core for RSA-2048
 *      and Ed25519 (scripts/bench-dkim.ts), and the end-to-end 5 KB case run
 *      without a key for the sender's domain and with `relay domains add
 *      bench.test --algorithm both` done before start (two signatures per
 *      message): the difference in relay CPU per message is signing's share;
 *   6. signing on one core (relay only, issue 11): the same unsigned and
 *      signed end-to-end runs with the relay pinned to CPU 0 (taskset -c 0)
 *      and smtp-source and smtp-sink to CPU 1, so the relay's rate is what
 *      one core does: the signed rate beside the unsigned one;
 *   7. shaping (relay only, issue 13): scripts/bench-shaping.ts;
 *   8. suppressions (relay only, issue 14): scripts/bench-suppressions.ts;
 *   9. operators (relay only, issue 15): scripts/bench-operators.ts;
 *  10. listing (relay only, issue 15): scripts/bench-queue-listing.ts, on dist/relay;
 *  11. fleet (relay only, issue 17): scripts/bench-fleet.ts;
 *  12. milter (relay and Postfix, issue 18): acceptance 5 KB x 20 sessions of
 *      each without a milter and with the same private rspamd as its milter,
 *      checked to have scanned every message: scripts/bench-milter.ts.
 *
 * Every load is bounded by a message count and a time cap (timeout(1)), and
 * every server started here is stopped at the end, also on failure.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { shapingBench, shapingReport, type ShapingResult } from "./bench-shaping.ts";
import { operatorsBench, operatorsReport, type OperatorsResult } from "./bench-operators.ts";
import { suppressionsBench, suppressionsReport, type SuppressionsResult } from "./bench-suppressions.ts";
import { fleetBench, fleetReport, type FleetResult } from "./bench-fleet.ts";
import { milterBench, milterReport, type MilterResult, type MilterSystem } from "./bench-milter.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const BENCH = join(ROOT, ".bench");
const RUN = join(BENCH, "run");
const BUN = join(ROOT, "node_modules/.bin/bun");
const HARAKA_BIN = join(BENCH, "haraka/node_modules/.bin/haraka");

const PORT = { relay: 12525, relayHttp: 18025, postfix: 10025, haraka: 12526, sink: 10026, park: 10027 } as const;
const HOST = "127.0.0.1";
const KB = 1024;

type SystemName = "relay" | "postfix" | "haraka";

interface Options {
  quick: boolean;
  systems: SystemName[];
  /** head, worktree, dist, or a commit to snapshot (before/after comparisons). */
  relaySource: string;
  phases: Set<Phase>;
  json: string;
  /** Queue depths for the deep-queue phase. */
  deep: number[];
  /** Run the relay under `bun --cpu-prof`, profiles written here (stopped with SIGTERM so they get written). */
  cpuProf?: string;
  /** Acceptance rounds; undefined: the plan's. */
  rounds?: number;
}

type Phase =
  | "accept"
  | "e2e"
  | "rss"
  | "deep"
  | "dkim"
  | "signing"
  | "shaping"
  | "suppressions"
  | "operators"
  | "listing"
  | "fleet"
  | "milter";
const PHASES: Phase[] = [
  "accept",
  "e2e",
  "rss",
  "deep",
  "dkim",
  "signing",
  "shaping",
  "suppressions",
  "operators",
  "listing",
  "fleet",
  "milter",
];

const HELP = `usage: scripts/bench [--quick] [--systems relay,postfix,haraka] [--relay head|worktree|dist|COMMIT]
                    [--only accept,e2e,rss,deep,dkim,signing,shaping,suppressions,operators,listing,fleet,milter] [--deep 10000,1000000] [--rounds N] [--cpu-prof DIR] [--json FILE]
  --quick     smaller message counts and shorter time caps, one acceptance round
  --relay     head: a snapshot of the committed HEAD (default, reproducible);
              worktree: src/ as it is now; dist: the built dist/relay;
              a commit: a snapshot of it (to measure before and after a change)
  --only      run only these phases (deep: relay only, end to end with a pre-filled queue;
              dkim: relay only, signing rate and its share of end-to-end CPU;
              signing: relay only, end to end 5 KB unsigned and signed with the relay
              pinned to CPU 0 and the load tools to CPU 1;
              shaping: relay only, the cost of pacing rules that do not bind, and a
              1,000,000-recipient backlog at a destination limited to 100/h, see scripts/bench-shaping.ts;
              suppressions: relay only, import and export of 1,000,000 entries and acceptance with them
              beside an empty list, see scripts/bench-suppressions.ts;
              operators: relay only, end to end with delivery logs at info, /metrics scraped every
              second and a webhook for every event, beside the same without, see scripts/bench-operators.ts;
              listing: relay only (dist/relay), GET /v1/queue/messages paged through 1,000,000 queued
              recipients per filter, see scripts/bench-queue-listing.ts;
              fleet: relay only, alone vs a fleet node on a sqld on loopback, acceptance over HTTP and SMTP
              per durability and the latency of a suppression check and a DKIM key lookup, see
              scripts/bench-fleet.ts;
              milter: relay and Postfix, acceptance 5 KB x 20 sessions of each without a milter and
              with one private rspamd (Debian package) as its milter, GTUBE refused and every message
              seen scanned in rspamd's log, see scripts/bench-milter.ts)
  --deep      queue depths (recipients queued, not due) for the deep phase
  --rounds    acceptance rounds (default 3; 1 with --quick): each system's median is reported;
              also the signing, fleet and milter phases' rounds
  --cpu-prof  run the relay under bun --cpu-prof, .cpuprofile files into DIR
              (one per relay run; summarise with scripts/bench-profile.ts)
  --json      where to write the results (default .bench/results.json)`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    systems: ["relay", "postfix", "haraka"],
    relaySource: "head",
    phases: new Set(PHASES),
    json: join(BENCH, "results.json"),
    deep: [10_000, 1_000_000],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--help" || a === "-h") {
      console.log(HELP);
      process.exit(0);
    } else if (a === "--quick") o.quick = true;
    else if (a === "--systems") o.systems = value().split(",") as SystemName[];
    else if (a === "--relay") o.relaySource = value() as Options["relaySource"];
    else if (a === "--only") o.phases = new Set(value().split(",") as Phase[]);
    else if (a === "--deep") o.deep = value().split(",").map((n) => Number(n.replaceAll("_", "")));
    else if (a === "--cpu-prof") o.cpuProf = resolve(value());
    else if (a === "--rounds") o.rounds = Number(value());
    else if (a === "--json") o.json = resolve(value());
    else throw new Error(`unknown option ${a}\n${HELP}`);
  }
  for (const s of o.systems) if (!["relay", "postfix", "haraka"].includes(s)) throw new Error(`unknown system ${s}`);
  if (
    !["head", "worktree", "dist"].includes(o.relaySource) &&
    spawnSync("git", ["-C", ROOT, "rev-parse", "--verify", "--quiet", `${o.relaySource}^{commit}`]).status !== 0
  ) {
    throw new Error(`--relay: head, worktree, dist or a commit, not ${o.relaySource}`);
  }
  for (const p of o.phases) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p}`);
  for (const n of o.deep) {
    if (!Number.isInteger(n) || n < 0 || n > 10_000_000) {
      throw new Error(`--deep: counts from 0 to 10,000,000, not ${n}`);
    }
  }
  if (o.rounds !== undefined && !(Number.isInteger(o.rounds) && o.rounds >= 1 && o.rounds <= 20)) {
    throw new Error("--rounds: a whole number from 1 to 20");
  }
  if (o.cpuProf && o.relaySource === "dist") throw new Error("--cpu-prof needs --relay head or worktree");
  return o;
}

const opts = parseArgs(process.argv.slice(2));

/**
 * Counts and caps: every load stops at whichever comes first. A measured
 * acceptance load is sized from the system's own warm-up rate to last about
 * acceptSeconds (within acceptCount's bounds), so a fast system is not
 * judged on a window of one second and a slow one does not run for minutes.
 */
const PLAN = opts.quick
  ? {
    acceptCount: { min: 1000, max: 20_000 },
    acceptSeconds: 2,
    acceptRounds: 1,
    acceptWarmup: { all: 300, relayJit: 700 },
    acceptCapS: 12,
    e2eCount: { 5: 1000, 50: 500 },
    e2eCapS: 25,
    warmup: 100,
    idle: 1000,
    deepCount: 2000,
    deepRounds: 1,
    dkimSignCount: 300,
    dkimRounds: 1,
    signingWarmup: 500,
    signingCount: 2000,
    signingRounds: 1,
    shapingRounds: 1,
    shapingBacklog: 100_000,
    shapingWaitS: 10,
    suppressionEntries: 100_000,
    suppressionMessages: 1000,
    suppressionRounds: 1,
    operatorsRounds: 1,
    operatorsMessages: 1000,
    listingRecipients: 100_000,
    fleetEntries: 100_000,
    fleetHttpMessages: 1000,
    fleetLookupCalls: 2000,
    fleetRounds: 1,
    fleetSmtpWarmup: 1000,
    fleetSmtpMessages: 2000,
    milterRounds: 1,
    milterWarmup: { all: 300, relayJit: 700 },
    milterCount: { min: 500, max: 20_000 },
    milterSeconds: 3,
    milterCapS: 20,
  }
  : {
    acceptCount: { min: 5000, max: 100_000 },
    acceptSeconds: 6,
    acceptRounds: 3,
    acceptWarmup: { all: 2000, relayJit: 8000 },
    acceptCapS: 30,
    e2eCount: { 5: 5000, 50: 2500 },
    e2eCapS: 60,
    warmup: 200,
    idle: 1000,
    deepCount: 10000,
    deepRounds: 2,
    dkimSignCount: 2000,
    dkimRounds: 2,
    signingWarmup: 3000,
    signingCount: 5000,
    signingRounds: 3,
    shapingRounds: 3,
    shapingBacklog: 1_000_000,
    shapingWaitS: 30,
    suppressionEntries: 1_000_000,
    suppressionMessages: 4000,
    suppressionRounds: 3,
    // Five: the two variants differ by a few percent, less than this machine's run-to-run noise.
    operatorsRounds: 5,
    // Three times the end-to-end case's count: the variants differ by a few percent, and a longer run averages
    // out more of the machine's noise and the start's JIT work.
    operatorsMessages: 15_000,
    listingRecipients: 1_000_000,
    fleetEntries: 100_000,
    fleetHttpMessages: 3000,
    fleetLookupCalls: 10_000,
    fleetRounds: 3,
    // Every message is signed twice (RSA-2048 + Ed25519): a few hundred a second on this machine.
    fleetSmtpWarmup: 3000,
    fleetSmtpMessages: 5000,
    milterRounds: 3,
    // The acceptance phase's warm-ups; through rspamd a warm-up may end at its 30 s cap instead.
    milterWarmup: { all: 2000, relayJit: 8000 },
    milterCount: { min: 2000, max: 100_000 },
    milterSeconds: 8,
    milterCapS: 60,
  };

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();
const log = (line: string) => console.error(`bench: ${line}`);

/** `cmd args` run on CPU `cpu` only (taskset), or as it is when `cpu` is undefined. */
const pinned = (cpu: string | undefined, cmd: string, args: string[]): [string, string[]] =>
  cpu === undefined ? [cmd, args] : ["taskset", ["-c", cpu, cmd, ...args]];

/** A command that exited with a status other than 0. */
class CommandFailed extends Error {
  constructor(readonly status: number | null, readonly stderr: string, command: string, output: string) {
    super(`${command} failed (${status}): ${output}`);
  }
}

function run(cmd: string, args: string[], env?: Record<string, string>, cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, cwd });
  if (r.status !== 0) throw new CommandFailed(r.status, r.stderr, `${cmd} ${args.join(" ")}`, r.stderr || r.stdout);
  return r.stdout;
}

/** Connect and read the 220 banner; resolves false on timeout. */
function banner(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, HOST);
    let buf = "";
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      res(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on("data", (d) => {
      buf += d.toString("latin1");
      if (/^220[ -]/.test(buf) && buf.includes("\n")) {
        s.write("QUIT\r\n");
        done(true);
      }
    });
    s.on("error", () => done(false));
  });
}

async function waitForSmtp(port: number, what: string, capMs = 30_000): Promise<void> {
  const until = now() + capMs;
  while (now() < until) {
    if (await banner(port, 2_000)) return;
    await sleep(200);
  }
  throw new Error(`${what} did not greet on ${HOST}:${port} within ${capMs / 1000}s`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen(port, HOST, () => s.close(() => res(true)));
  });
}

const children = new Set<ChildProcess>();
function start(
  cmd: string,
  args: string[],
  o: { env?: Record<string, string>; cwd?: string; out?: string },
): ChildProcess {
  // Output given a file goes straight into it, as a service's goes to the journal: copied through this process
  // (a synchronous append a chunk), the relay's log lines took this process's CPU and event loop, which the
  // webhook receiver and the bench's own timing share.
  const out = o.out === undefined ? "pipe" : openSync(o.out, "w");
  const child = spawn(cmd, args, {
    cwd: o.cwd ?? ROOT,
    env: { ...process.env, ...o.env },
    detached: true, // own process group, so the whole tree can be stopped
    stdio: ["ignore", out, out],
  });
  if (typeof out === "number") closeSync(out);
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

async function kill(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL", capMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    process.kill(-child.pid!, signal);
  } catch {
    /* already gone */
  }
  await Promise.race([exited, sleep(capMs)]);
  if (child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      /* gone */
    }
    await Promise.race([exited, sleep(2_000)]);
  }
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return (r.stdout || r.stderr || "").trim().split("\n")[0] ?? "";
}

// ---------------------------------------------------------------- parking lot and sink

/** A destination that accepts TCP and never greets: deliveries wait there while acceptance is measured. */
class ParkingLot {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  async open(): Promise<void> {
    this.server = createServer((s) => {
      this.sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(PORT.park, HOST, 4096, () => r()));
  }
  /** Drop the waiting connections (the server stays): lets a relay under the profiler shut down promptly. */
  drop(): void {
    for (const s of this.sockets) s.destroy();
  }
  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Postfix's smtp-sink: accepts everything, counts messages (-c prints "mesg=N"). */
class Sink {
  private child: ChildProcess | undefined;
  private out = "";
  /**
   * `dump`: also append every message to this file (smtp-sink -D, a strftime
   * template: no "%"), to look at what was delivered. smtp-sink runs as nobody
   * and creates its files there, so the directory must be nobody's.
   * `cpu`: run it on that CPU only.
   */
  constructor(private readonly dump?: string, private readonly cpu?: string) {}
  async open(): Promise<void> {
    this.out = "";
    this.child = start(
      ...pinned(this.cpu, "smtp-sink", [
        "-u",
        "nobody",
        "-c",
        ...(this.dump ? ["-D", this.dump] : []),
        `${HOST}:${PORT.sink}`,
        "1024",
      ]),
      {},
    );
    this.child.stdout!.on("data", (d: Buffer) => {
      this.out += d.toString("latin1");
      if (this.out.length > 4096) this.out = this.out.slice(-512);
    });
    await waitForSmtp(PORT.sink, "smtp-sink");
  }
  /** Messages received so far (the banner probes count as sessions, not messages). */
  count(): number {
    const all = [...this.out.matchAll(/mesg=(\d+)/g)];
    return all.length ? Number(all[all.length - 1]![1]) : 0;
  }
  async close(): Promise<void> {
    if (this.child) await kill(this.child, "SIGTERM", 3_000);
  }
}

// ---------------------------------------------------------------- the systems

interface Sut {
  readonly name: SystemName;
  readonly port: number;
  /** What it does before it answers 250 to DATA. */
  readonly durability: string;
  readonly concurrencyNote: string;
  /** Start fresh (empty queue), routing everything to 127.0.0.1:target. */
  start(target: number, tag: string): Promise<void>;
  stop(): Promise<void>;
  pid(): number | undefined;
}

/** What the deep-queue phase needs on top: a pre-filled queue, start-up time, CPU time. */
interface RelaySut extends Sut {
  /** Start with `prefill` recipients queued (not due); resolves with what the pre-fill and the start-up took. */
  startDeep(target: number, tag: string, prefill: number): Promise<{ prefill: PrefillResult; startupS: number }>;
  /**
   * Start fresh after running these relay commands (e.g. `domains add`) on the new data directory, both
   * with `env` on top of the bench's; resolves with the data directory once /readyz answers.
   */
  startWith(target: number, tag: string, commands: string[][], env?: Record<string, string>): Promise<string>;
  /**
   * Start fresh with this environment on top of the bench's, and with
   * `prefill.n` recipients written by bench-prefill.ts with `prefill.args`;
   * resolves with the data directory once /readyz answers.
   */
  startShaped(
    target: number,
    tag: string,
    env: Record<string, string>,
    prefill?: { n: number; args: string[] },
  ): Promise<string>;
  /** utime + stime of the relay process (all its threads, the database worker included), in seconds. */
  cpuSeconds(): number;
  /** CPU seconds by thread name. */
  threads(): Record<string, number>;
  /** How the harness runs the relay: the command before its arguments, and where. */
  readonly command: { readonly cmd: readonly string[]; readonly cwd: string };
}

interface PrefillResult {
  recipients: number;
  messages: number;
  events: number;
  domains: number;
  seconds: number;
  bytes: number;
  /** The scheduler's queries on the pre-filled database: plan and time (scripts/bench-prefill.ts --explain). */
  queries?: { name: string; plan: string[]; ms: number }[];
}

/** The relay's admin token in every run of the harness. */
const ADMIN_TOKEN = "bench-admin-token-0123456789";

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** utime + stime from a /proc .../stat line (fields 14 and 15, after the parenthesised name). */
function statCpu(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** utime + stime of a process (all its threads), in seconds. */
function cpuSecondsOf(pid: number): number {
  return statCpu(readFileSync(`/proc/${pid}/stat`, "utf8"));
}

/** CPU seconds per thread name (/proc/<pid>/task/<tid>/comm; same names summed): the main JS thread vs the database worker vs Bun's helpers. */
function threadCpu(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim() || "?";
      const name = tid === String(pid) ? `${comm} (main)` : comm;
      out[name] = (out[name] ?? 0) + statCpu(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"));
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

function threadDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d > 0) out[k] = Number(d.toFixed(2));
  }
  return out;
}

/** Under --cpu-prof: the measured window of a relay run, beside its profile, so scripts/bench-profile.ts can leave out start-up, warm-up and shutdown. */
function markProfileWindow(tag: string, fromMs: number, toMs: number): void {
  if (opts.cpuProf) {
    writeFileSync(join(opts.cpuProf, `relay-${tag}.window.json`), `${JSON.stringify({ fromMs, toMs })}\n`);
  }
}

/** The relay; with `cpu`, every relay process runs on that CPU only (taskset). */
function relaySut(cpu?: string): RelaySut {
  let child: ChildProcess | undefined;
  /** The data directory of the run in progress: removed when it stops (a 50 KB case leaves gigabytes). */
  let data = "";
  let cmd: string[] = [];
  let cwd = ROOT;
  if (opts.relaySource === "dist") {
    const bin = join(ROOT, "dist/relay");
    if (!existsSync(bin)) run(BUN, ["scripts/build.ts"]);
    cmd = [bin];
  } else if (opts.relaySource === "worktree") {
    cmd = [BUN, "src/main.ts"];
  } else {
    // A snapshot of the committed HEAD (or the commit named), so that uncommitted edits do not leak into the numbers.
    const commit = opts.relaySource === "head" ? "HEAD" : opts.relaySource;
    cwd = join(BENCH, "relay-head");
    rmSync(cwd, { recursive: true, force: true });
    mkdirSync(cwd, { recursive: true });
    const tar = spawnSync("bash", ["-c", `git -C "${ROOT}" archive "${commit}" | tar -x -C "${cwd}"`], {
      encoding: "utf8",
    });
    if (tar.status !== 0) throw new Error(`git archive ${commit} failed: ${tar.stderr}`);
    symlinkSync(join(ROOT, "node_modules"), join(cwd, "node_modules"));
    cmd = [BUN, "src/main.ts"];
  }
  const env = (data: string, target: number, extra: Record<string, string> = {}): Record<string, string> => ({
    RELAY_DATA_DIR: data,
    RELAY_SMTP_LISTEN: `${HOST}:${PORT.relay}`,
    RELAY_HTTP_LISTEN: `${HOST}:${PORT.relayHttp}`,
    RELAY_ADMIN_TOKEN: ADMIN_TOKEN,
    RELAY_HOSTNAME: "relay.bench.test",
    RELAY_NODE_ID: "bench",
    RELAY_ROUTES: `*=${HOST}:${target}`,
    RELAY_DNS_SERVERS: `${HOST}:1`,
    RELAY_LOG_LEVEL: "warn",
    // The load comes from one address; Postfix exempts mynetworks from its per-client limits too.
    RELAY_MAX_CONNECTIONS: "5000",
    RELAY_MAX_CONNECTIONS_PER_IP: "5000",
    // Delivery limits stay at their defaults (RELAY_DESTINATION_MAX_CONNECTIONS 10, RELAY_MESSAGES_PER_CONNECTION 100).
    ...extra,
  });
  const serve = (data: string, target: number, tag: string, extra: Record<string, string> = {}) => {
    const [bin, ...pre] = cmd;
    const prof = opts.cpuProf
      ? ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProf}`, `--cpu-prof-name=relay-${tag}.cpuprofile`]
      : [];
    if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true });
    const t0 = now();
    const c = start(...pinned(cpu, bin!, [...prof, ...pre, "serve"]), {
      cwd,
      out: join(RUN, `relay-${tag}.log`),
      env: env(data, target, extra),
    });
    c.on("exit", (code, signal) => {
      if (child === c) {
        log(`relay (${tag}) exited on its own: code ${code}, signal ${signal}; see ${join(RUN, `relay-${tag}.log`)}`);
      }
    });
    child = c;
    return t0;
  };
  /** /readyz answers 200 once the scheduler has started (after releaseLeases), which the SMTP banner does not wait for. */
  const waitReady = async (capMs = 60_000): Promise<void> => {
    const until = now() + capMs;
    while (now() < until) {
      try {
        const r = await fetch(`http://${HOST}:${PORT.relayHttp}/readyz`, { signal: AbortSignal.timeout(2_000) });
        if (r.status === 200) return;
      } catch {
        /* not listening yet */
      }
      await sleep(10);
    }
    throw new Error(`relay not ready within ${capMs / 1000}s`);
  };
  return {
    name: "relay",
    command: { cmd, cwd },
    port: PORT.relay,
    durability:
      "the bodies appended to a spool segment file opened O_DSYNC (on disk when the write returns), then message, recipients and 'received' events in one libSQL transaction (raw multi-row INSERTs, on the database worker thread; WAL, synchronous=FULL: fsync of the WAL) before 250; concurrent DATAs share the append and the commit (group commit, up to 256 messages)",
    concurrencyNote:
      "one process (Bun): SMTP sessions and the delivery scheduler on the main thread, libSQL on a worker thread; delivery: one pool per destination, default RELAY_DESTINATION_MAX_CONNECTIONS=10, RELAY_MESSAGES_PER_CONNECTION=100, outcomes group-committed",
    async start(target, tag) {
      data = join(RUN, `relay-${tag}`);
      rmSync(data, { recursive: true, force: true });
      serve(data, target, tag);
      await waitForSmtp(PORT.relay, "relay");
    },
    async startWith(target, tag, commands, extra = {}) {
      data = join(RUN, `relay-${tag}`);
      rmSync(data, { recursive: true, force: true });
      const [bin, ...pre] = cmd;
      for (const args of commands) run(bin!, [...pre, ...args], env(data, target, extra), cwd);
      serve(data, target, tag, extra);
      await waitForSmtp(PORT.relay, "relay");
      await waitReady();
      return data;
    },
    async startDeep(target, tag, n) {
      data = join(RUN, `relay-${tag}`);
      rmSync(data, { recursive: true, force: true });
      const [bin, ...pre] = cmd;
      run(bin!, [...pre, "migrate"], env(data, target), cwd);
      const out = run(BUN, [join(ROOT, "scripts/bench-prefill.ts"), join(data, "relay.db"), String(n), "--explain"]);
      const prefill = JSON.parse(out.trim().split("\n").pop()!) as PrefillResult;
      const t0 = serve(data, target, tag);
      await waitForSmtp(PORT.relay, "relay");
      await waitReady();
      return { prefill, startupS: (now() - t0) / 1000 };
    },
    async startShaped(target, tag, extra, prefill) {
      data = join(RUN, `relay-${tag}`);
      rmSync(data, { recursive: true, force: true });
      const [bin, ...pre] = cmd;
      if (prefill) {
        run(bin!, [...pre, "migrate"], env(data, target, extra), cwd);
        run(BUN, [join(ROOT, "scripts/bench-prefill.ts"), join(data, "relay.db"), String(prefill.n), ...prefill.args]);
      }
      serve(data, target, tag, extra);
      await waitForSmtp(PORT.relay, "relay");
      await waitReady();
      return data;
    },
    async stop() {
      // Under the profiler, a clean exit writes the profile: SIGTERM, and time for the shutdown grace (10 s).
      const c = child;
      child = undefined;
      if (c) await kill(c, opts.cpuProf ? "SIGTERM" : "SIGKILL", opts.cpuProf ? 30_000 : 10_000);
      if (data) rmSync(data, { recursive: true, force: true });
    },
    pid: () => child?.pid,
    cpuSeconds: () => cpuSecondsOf(child!.pid!),
    threads: () => threadCpu(child!.pid!),
  };
}

/** Postfix; `mainCf`: lines added to the harness's main.cf (the milter phase's smtpd_milters). */
function postfixSut(mainCf: readonly string[] = []): Sut {
  const etc = join(BENCH, "postfix-etc");
  let queue = "";
  const master = (): number | undefined => {
    try {
      return Number(readFileSync(join(queue, "pid/master.pid"), "utf8").trim()) || undefined;
    } catch {
      return undefined;
    }
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  return {
    name: "postfix",
    port: PORT.postfix,
    durability:
      "cleanup(8) writes the queue file and fsync()s it before smtpd answers 250 (Postfix defaults; no directory fsync)",
    concurrencyNote:
      "one smtpd process per session (default_process_limit raised 100 -> 300 so 200 sessions all get one); defaults otherwise",
    async start(target, tag) {
      queue = join(RUN, `postfix-${tag}`);
      rmSync(queue, { recursive: true, force: true });
      mkdirSync(etc, { recursive: true });
      mkdirSync(queue, { recursive: true });
      mkdirSync(join(RUN, `postfix-${tag}-data`), { recursive: true });
      spawnSync("chown", ["postfix", join(RUN, `postfix-${tag}-data`)]);
      writeFileSync(
        join(etc, "main.cf"),
        [
          "compatibility_level = 3.6",
          `queue_directory = ${queue}`,
          `data_directory = ${join(RUN, `postfix-${tag}-data`)}`,
          "myhostname = postfix.bench.test",
          "mydomain = bench.test",
          "myorigin = $myhostname",
          "mydestination =",
          "local_transport = error:no local delivery in the benchmark",
          "inet_interfaces = 127.0.0.1",
          "inet_protocols = ipv4",
          "mynetworks = 127.0.0.0/8",
          "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
          `relayhost = [${HOST}]:${target}`,
          "default_process_limit = 300",
          "smtpd_tls_security_level = none",
          "smtp_tls_security_level = none",
          "biff = no",
          ...mainCf,
          "",
        ].join("\n"),
      );
      // The Debian master.cf, with the port-25 listener replaced by ours and no chroot.
      const proto = readFileSync("/etc/postfix/master.cf", "utf8")
        .split("\n")
        .map((l) => (/^smtp\s+inet\s/.test(l) ? `#${l}` : l))
        .join("\n");
      writeFileSync(join(etc, "master.cf"), `${proto}\n${HOST}:${PORT.postfix} inet n - n - - smtpd\n`);
      run("postconf", ["-c", etc, "-F", "*/*/chroot = n"]);
      run("postfix", ["-c", etc, "set-permissions"], {});
      run("postfix", ["-c", etc, "start"]);
      await waitForSmtp(PORT.postfix, "postfix");
    },
    async stop() {
      const pid = master();
      spawnSync("postfix", ["-c", etc, "stop"], { encoding: "utf8" });
      const until = now() + 15_000;
      while (pid && alive(pid) && now() < until) await sleep(100);
      if (pid && alive(pid)) spawnSync("postfix", ["-c", etc, "abort"]);
      // smtpd/cleanup children exit on their own once the master is gone; make sure of it.
      spawnSync("pkill", ["-KILL", "-f", `-c ${etc}`]);
      if (queue) { for (const dir of [queue, `${queue}-data`]) rmSync(dir, { recursive: true, force: true }); }
    },
    pid: master,
  };
}

function harakaSut(): Sut {
  const dir = join(BENCH, "haraka-cfg");
  let child: ChildProcess | undefined;
  const setup = () => {
    rmSync(dir, { recursive: true, force: true });
    run(HARAKA_BIN, ["-i", dir]);
    const cfg = join(dir, "config");
    writeFileSync(join(cfg, "smtp.ini"), `[main]\nlisten=${HOST}:${PORT.haraka}\nnodes=cpus\n`);
    writeFileSync(join(cfg, "log.ini"), "[main]\nlevel=warn\ntimestamps=false\n");
    // relay: 127.0.0.0/8 may relay (the relay plugin's ACL); queueing: Haraka's core outbound queue.
    writeFileSync(join(cfg, "plugins"), "bench_route\nrelay\n");
    writeFileSync(join(cfg, "relay.ini"), "[relay]\nacl=true\n");
    writeFileSync(join(cfg, "relay_acl_allow"), "127.0.0.0/8\n");
    writeFileSync(join(cfg, "outbound.ini"), "local_mx_ok=true\nenable_tls=false\n");
    writeFileSync(join(cfg, "me"), "haraka.bench.test\n");
    writeFileSync(
      join(dir, "plugins", "bench_route.js"),
      `// Benchmark routing: every domain goes to the loopback port in BENCH_MX_PORT,
// and the client's name is not looked up (the benchmark has no DNS).
exports.hook_lookup_rdns = (next) => next(OK, 'localhost')
exports.hook_get_mx = (next, hmail, domain) =>
    next(OK, { exchange: '127.0.0.1', port: Number(process.env.BENCH_MX_PORT), priority: 0 })
`,
    );
  };
  let ready = false;
  return {
    name: "haraka",
    port: PORT.haraka,
    durability:
      "core outbound queue: the message is written to a file in queue/ through FsyncWriteStream (fsync before close), renamed into place, then 250 (no directory fsync)",
    concurrencyNote: "nodes=cpus (2 worker processes, Haraka's cluster mode); relay plugin ACL 127.0.0.0/8",
    async start(target, tag) {
      if (!ready) {
        setup();
        ready = true;
      }
      rmSync(join(dir, "queue"), { recursive: true, force: true });
      child = start("node", [HARAKA_BIN, "-c", dir], {
        out: join(RUN, `haraka-${tag}.log`),
        env: { BENCH_MX_PORT: String(target) },
      });
      await waitForSmtp(PORT.haraka, "haraka");
    },
    async stop() {
      if (child) await kill(child, "SIGKILL");
      child = undefined;
      rmSync(join(dir, "queue"), { recursive: true, force: true });
    },
    pid: () => child?.pid,
  };
}

// ---------------------------------------------------------------- load

interface LoadResult {
  sent: number;
  seconds: number;
  rate: number;
  capped: boolean;
  error?: string;
  /** 1-minute load average when the load ended: other work on the machine shows here. */
  load1?: number;
}

const load1 = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

/**
 * smtp-source: `sessions` connections, each reused for its messages (-d), no
 * pipelining. Its running count (-c, one line per message) goes to a file,
 * read once it exits: a pipe read live woke this process thousands of times
 * a second and took CPU from the system measured (about 10% of the relay's
 * rate at 50 KB, measured), more the faster that system is. `cpu`: run
 * smtp-source on that CPU only.
 */
async function load(
  port: number,
  sessions: number,
  count: number,
  bytes: number,
  capS: number,
  cpu?: string,
): Promise<LoadResult> {
  const args = [
    "-s",
    "INT",
    "-k",
    `${capS + 5}s`,
    `${capS}s`,
    ...(cpu === undefined ? [] : ["taskset", "-c", cpu]),
    "smtp-source",
    "-c",
    "-d",
    "-s",
    String(sessions),
    "-m",
    String(count),
    "-l",
    String(bytes),
    "-M",
    "client.bench.test",
    "-f",
    "sender@bench.test",
    "-t",
    "rcpt@example.net",
    `${HOST}:${port}`,
  ];
  const counter = join(RUN, "smtp-source.count");
  const out = openSync(counter, "w");
  const t0 = now();
  const child = spawn("timeout", args, { stdio: ["ignore", out, "pipe"] });
  closeSync(out);
  children.add(child);
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString("latin1")));
  const code: number = await new Promise((r) => child.on("exit", (c, s) => r(c ?? (s ? 128 : 1))));
  children.delete(child);
  const seconds = (now() - t0) / 1000;
  const counts = readFileSync(counter, "latin1").slice(-1024).split(/[\r\n]+/).filter((s) => /^\d+$/.test(s));
  const sent = code === 0 ? count : Number(counts[counts.length - 1] ?? 0);
  const capped = code === 124;
  const result: LoadResult = { sent, seconds, rate: sent / seconds, capped, load1: load1() };
  if (code !== 0 && !capped) result.error = (err.trim().split("\n").pop() ?? `exit ${code}`).slice(0, 300);
  return result;
}

// ---------------------------------------------------------------- phases

interface AcceptRow extends LoadResult {
  system: SystemName;
  kb: number;
  sessions: number;
  round: number;
  /** Relay only: CPU time per accepted message (all threads), ms. */
  cpuMsPerMsg?: number;
  /** Relay only: CPU seconds by thread over the measured load. */
  threads?: Record<string, number>;
}
interface E2eRow {
  system: SystemName;
  kb: number;
  sessions: number;
  messages: number;
  delivered: number;
  acceptSeconds: number;
  seconds: number;
  rate: number;
  capped: boolean;
  error?: string;
  load1?: number;
  /** 1-minute load average just before the measured load. */
  load1Before?: number;
  /** Relay only: its CPU time (utime + stime, all threads) per delivered message over the measured load, in ms. */
  cpuMsPerMsg?: number;
  /** Relay only: CPU seconds by thread over the measured load. */
  threads?: Record<string, number>;
}

interface DeepRow extends E2eRow {
  /** Recipients queued (not due) before the relay started. */
  queued: number;
  prefill: PrefillResult;
  /** From spawning the relay to /readyz answering 200 (migrations checked, leases released, scheduler started). */
  startupS: number;
  round: number;
}

/** Send `count` messages (PLAN.warmup), wait until the sink has them; returns the sink's count to measure from. */
async function warmUp(sut: Sut, sink: Sink, kb: number, count = PLAN.warmup, cpu?: string): Promise<number> {
  await load(sut.port, 10, count, kb * KB, 30, cpu);
  const warmUntil = now() + 30_000;
  while (sink.count() < count && now() < warmUntil) await sleep(50);
  return sink.count();
}

/** One measured end-to-end load: `n` messages over `sessions`, timed until the sink has counted them all (or the cap). */
async function measureE2e(
  sut: Sut,
  sink: Sink,
  base: number,
  kb: number,
  sessions: number,
  n: number,
  tag: string,
  cpu?: string,
): Promise<E2eRow> {
  const relay = sut.name === "relay" ? (sut as RelaySut) : undefined;
  const load1Before = load1();
  const cpu0 = relay?.cpuSeconds();
  const threads0 = relay?.threads();
  const from = Date.now();
  const t0 = now();
  const r = await load(sut.port, sessions, n, kb * KB, PLAN.e2eCapS, cpu);
  const acceptSeconds = (now() - t0) / 1000;
  const until = t0 + PLAN.e2eCapS * 1000;
  while (sink.count() - base < r.sent && now() < until) await sleep(20);
  const seconds = (now() - t0) / 1000;
  const cpu1 = relay?.cpuSeconds();
  const threads = relay ? threadDelta(threads0!, relay.threads()) : undefined;
  if (relay) markProfileWindow(tag, from, Date.now());
  const delivered = sink.count() - base;
  const row: E2eRow = {
    system: sut.name,
    kb,
    sessions,
    messages: r.sent,
    delivered,
    acceptSeconds,
    seconds,
    rate: delivered / seconds,
    capped: delivered < r.sent || r.capped,
    load1: load1(),
    load1Before,
  };
  if (cpu0 !== undefined && cpu1 !== undefined && delivered > 0) row.cpuMsPerMsg = ((cpu1 - cpu0) * 1000) / delivered;
  if (threads) row.threads = threads;
  if (r.error) row.error = r.error;
  return row;
}

/** The systems in a round's order: each round starts with the next one, so none is always first (or last) on a warming machine. */
const rotate = <T>(items: T[], by: number): T[] => items.map((_, i) => items[(i + by) % items.length]!);

async function acceptance(suts: Sut[]): Promise<AcceptRow[]> {
  const rows: AcceptRow[] = [];
  const rounds = opts.rounds ?? PLAN.acceptRounds;
  const park = new ParkingLot();
  await park.open();
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const kb of [5, 50] as const) {
        for (const sessions of [20, 200]) {
          for (const sut of rotate(suts, round - 1)) rows.push(await acceptOnce(sut, park, kb, sessions, round));
        }
      }
    }
  } finally {
    await park.close();
  }
  return rows;
}

/** How much warm-up and how long a measured acceptance load: `count` messages, sized from the warm-up's rate. */
interface AcceptSize {
  readonly warmup: { readonly all: number; readonly relayJit: number };
  readonly count: { readonly min: number; readonly max: number };
  readonly seconds: number;
  readonly capS: number;
}

const ACCEPT_SIZE: AcceptSize = {
  warmup: PLAN.acceptWarmup,
  count: PLAN.acceptCount,
  seconds: PLAN.acceptSeconds,
  capS: PLAN.acceptCapS,
};

/** One system, one case, one round: a fresh start, a warm-up, a measured load. */
async function acceptOnce(sut: Sut, park: ParkingLot, kb: number, sessions: number, round: number): Promise<AcceptRow> {
  const tag = `accept-${kb}k-${sessions}-r${round}`;
  await sut.start(PORT.park, tag);
  try {
    const row = await warmAndAccept(sut, kb, sessions, round, tag, ACCEPT_SIZE);
    log(
      `accept ${sut.name.padEnd(7)} ${kb} KB x ${sessions} round ${round}: ${
        row.rate.toFixed(0)
      } msg/s (${row.sent} in ${row.seconds.toFixed(1)} s${row.capped ? ", time cap" : ""})${
        row.cpuMsPerMsg === undefined ? "" : `, ${row.cpuMsPerMsg.toFixed(3)} ms CPU/msg`
      }${row.error ? ` ERROR ${row.error}` : ""}`,
    );
    return row;
  } finally {
    if (opts.cpuProf) park.drop();
    await sut.stop();
  }
}

/**
 * On a started system: a warm-up, then a measured load of a size from the
 * warm-up's rate. Also returns how many messages the warm-ups had acknowledged.
 */
async function warmAndAccept(
  sut: Sut,
  kb: number,
  sessions: number,
  round: number,
  tag: string,
  size: AcceptSize,
): Promise<AcceptRow & { warmupSent: number }> {
  // Warm-up with the same number of sessions, not counted, until each system runs as it will:
  // Postfix and Haraka spawn their processes (more only grows their parked queue, which slows
  // Postfix down); the relay's JIT compiles its hot code, which takes about 10,000 messages
  // (after 2,000 it still compiled through the measurement: a start-up cost, not the steady state).
  // The relay's extra messages are 5 KB ones, so that every system has written about as much
  // to the disk as the others when its measured load starts: this machine's disk slows down once
  // a few GB have been written in a row, and 8,000 more messages of 50 KB are 400 MB.
  const jit = sut.name === "relay" ? (await load(sut.port, sessions, size.warmup.relayJit, 5 * KB, 30)).sent : 0;
  const warm = await load(sut.port, sessions, size.warmup.all, kb * KB, 30);
  const count = Math.round(Math.min(size.count.max, Math.max(size.count.min, warm.rate * size.seconds)));
  // The disk starts each load clean: what the previous system (or the warm-up) left dirty
  // would otherwise be written back during this one, and slow its fsyncs.
  run("sync", []);
  const relay = sut.name === "relay" ? (sut as RelaySut) : undefined;
  const [cpu0, threads0, from] = [relay?.cpuSeconds(), relay?.threads(), Date.now()];
  const r = await load(sut.port, sessions, count, kb * KB, size.capS);
  const row: AcceptRow & { warmupSent: number } = {
    system: sut.name,
    kb,
    sessions,
    round,
    ...r,
    warmupSent: jit + warm.sent,
  };
  if (relay) {
    markProfileWindow(tag, from, Date.now());
    row.cpuMsPerMsg = ((relay.cpuSeconds() - cpu0!) * 1000) / Math.max(1, r.sent);
    row.threads = threadDelta(threads0!, relay.threads());
  }
  return row;
}

async function endToEnd(suts: Sut[]): Promise<E2eRow[]> {
  const rows: E2eRow[] = [];
  const sessions = 20;
  for (const kb of [5, 50] as const) {
    for (const sut of suts) {
      const sink = new Sink();
      await sink.open();
      const tag = `e2e-${kb}k`;
      await sut.start(PORT.sink, tag);
      try {
        // Warm-up: send, wait until delivered, then measure from that baseline.
        const base = await warmUp(sut, sink, kb);
        const row = await measureE2e(sut, sink, base, kb, sessions, PLAN.e2eCount[kb], tag);
        rows.push(row);
        log(
          `e2e    ${sut.name.padEnd(7)} ${kb} KB x ${sessions}: ${
            row.rate.toFixed(0)
          } msg/s delivered (${row.delivered}/${row.messages} in ${row.seconds.toFixed(1)} s; accepted in ${
            row.acceptSeconds.toFixed(1)
          } s)${row.cpuMsPerMsg === undefined ? "" : `, ${row.cpuMsPerMsg.toFixed(3)} ms CPU/msg`}${
            row.capped ? " [time cap]" : ""
          }${row.error ? ` ERROR ${row.error}` : ""}`,
        );
      } catch (error) {
        // One case failing (a server that died) is a row with the error, not the end of the run.
        const message = error instanceof Error ? error.message : String(error);
        rows.push({
          system: sut.name,
          kb,
          sessions,
          messages: 0,
          delivered: 0,
          acceptSeconds: 0,
          seconds: 0,
          rate: 0,
          capped: false,
          error: message,
        });
        log(`e2e    ${sut.name.padEnd(7)} ${kb} KB x ${sessions}: ERROR ${message}`);
      } finally {
        await sut.stop();
        await sink.close();
      }
    }
  }
  return rows;
}

/**
 * Issue 4's deep queue: the end-to-end 5 KB x 20 case with N recipients
 * already queued and not due (30 days ahead), N from opts.deep, in
 * PLAN.deepRounds interleaved rounds (10k, 1M, 10k, 1M: drift in the
 * machine's other load hits both depths alike). Reports msg/s, the relay's
 * CPU time per delivered message, and the start-up time.
 */
async function deepQueue(relay: RelaySut): Promise<DeepRow[]> {
  const rows: DeepRow[] = [];
  const kb = 5;
  const sessions = 20;
  for (let round = 1; round <= PLAN.deepRounds; round++) {
    for (const queued of opts.deep) {
      const sink = new Sink();
      await sink.open();
      const tag = `deep-${queued}-${round}`;
      try {
        const { prefill, startupS } = await relay.startDeep(PORT.sink, tag, queued);
        const base = await warmUp(relay, sink, kb);
        const e2e = await measureE2e(relay, sink, base, kb, sessions, PLAN.deepCount, tag);
        const row: DeepRow = { ...e2e, queued, prefill, startupS, round };
        rows.push(row);
        log(
          `deep   relay ${queued.toLocaleString("en")} queued (pre-fill ${prefill.seconds.toFixed(1)} s, start-up ${
            startupS.toFixed(2)
          } s): ${row.rate.toFixed(0)} msg/s delivered (${row.delivered}/${row.messages} in ${
            row.seconds.toFixed(1)
          } s), ${fmt(row.cpuMsPerMsg, 3)} ms CPU/msg, load ${fmt(row.load1Before, 2)}${
            row.capped ? " [time cap]" : ""
          }${row.error ? ` ERROR ${row.error}` : ""}`,
        );
      } catch (error) {
        log(
          `deep   relay ${queued.toLocaleString("en")} queued: ERROR ${
            error instanceof Error ? error.message : String(error)
          }`,
        );
      } finally {
        await relay.stop();
        await sink.close();
      }
    }
  }
  return rows;
}

interface SigningRow {
  name: string;
  perSecond: number;
  msEach: number;
}

interface DkimRow extends E2eRow {
  /** unsigned: no key for bench.test; signed: RSA-2048 + Ed25519 keys, every message signed twice. */
  variant: "unsigned" | "signed";
  round: number;
  /** DKIM-Signature fields in the first message the sink dumped (0 unsigned, 2 signed). */
  signatures: number;
}

interface DkimResult {
  signing: { messages: number; bytes: number; runtime: string; rows: SigningRow[] };
  e2e: DkimRow[];
  /** Mean relay CPU ms per message of each variant, the difference, and its share of the signed cost. */
  unsignedCpuMs?: number;
  signedCpuMs?: number;
  signingCpuMs?: number;
  share?: number;
}

/** DKIM-Signature fields in the header of the first message of an smtp-sink dump (its first 64 KB). */
function signaturesInDump(file: string): number {
  let text = "";
  try {
    text = readFileSync(file, "latin1").slice(0, 65_536);
  } catch {
    return -1;
  }
  const end = text.search(/\r?\n\r?\n/);
  return (text.slice(0, end < 0 ? undefined : end).match(/^DKIM-Signature:/gim) ?? []).length;
}

/**
 * Issue 5's signing cost: messages/s on one core for RSA-2048 and Ed25519
 * (scripts/bench-dkim.ts from the work tree, a bounded loop), then the
 * end-to-end 5 KB x 20 case without a key for the load's From domain
 * (bench.test) and with `relay domains add bench.test --algorithm both` done
 * before the relay starts, interleaved over PLAN.dkimRounds rounds. The sink
 * dumps what it receives, so the signed runs are seen to carry two signatures.
 */
async function dkimCost(relay: RelaySut): Promise<DkimResult> {
  const out = run(BUN, [
    join(ROOT, "scripts/bench-dkim.ts"),
    "--messages",
    String(PLAN.dkimSignCount),
    "--size",
    String(5 * KB),
    "--json",
  ]);
  const signing = JSON.parse(out.trim().split("\n").pop()!) as DkimResult["signing"];
  for (const r of signing.rows) {
    log(
      `dkim   sign ${r.name.padEnd(20)} ${r.perSecond.toFixed(0)} messages/s on one core (${
        r.msEach.toFixed(3)
      } ms each)`,
    );
  }
  const rows = await unsignedAndSigned(relay, {
    phase: "dkim",
    rounds: PLAN.dkimRounds,
    warmup: PLAN.warmup,
    count: PLAN.e2eCount[5],
  });
  const mean = (variant: DkimRow["variant"]) => {
    const v = rows.filter((r) => r.variant === variant).map((r) => r.cpuMsPerMsg).filter((x): x is number =>
      x !== undefined
    );
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
  };
  const unsignedCpuMs = mean("unsigned");
  const signedCpuMs = mean("signed");
  const result: DkimResult = { signing, e2e: rows, unsignedCpuMs, signedCpuMs };
  if (unsignedCpuMs !== undefined && signedCpuMs !== undefined) {
    result.signingCpuMs = signedCpuMs - unsignedCpuMs;
    result.share = result.signingCpuMs / signedCpuMs;
  }
  return result;
}

/**
 * The end-to-end 5 KB x 20 case without a key for the load's From domain
 * (bench.test) and with `relay domains add bench.test --algorithm both` done
 * before the relay starts, taking turns over `rounds` rounds. The sink dumps
 * what it receives, so the signed runs are seen to carry two signatures.
 * `loadCpu`: smtp-source and smtp-sink run on that CPU only.
 */
async function unsignedAndSigned(
  relay: RelaySut,
  o: { phase: string; rounds: number; warmup: number; count: number; loadCpu?: string },
): Promise<DkimRow[]> {
  const rows: DkimRow[] = [];
  const kb = 5;
  const sessions = 20;
  for (let round = 1; round <= o.rounds; round++) {
    for (const variant of ["unsigned", "signed"] as const) {
      const tag = `${o.phase}-${variant}-${round}`;
      const dumpDir = mkdtempSync(join(tmpdir(), "relay-bench-sink-"));
      spawnSync("chown", ["nobody", dumpDir]);
      const dump = join(dumpDir, "sink.dump");
      const sink = new Sink(dump, o.loadCpu);
      await sink.open();
      try {
        if (variant === "signed") {
          await relay.startWith(PORT.sink, tag, [["domains", "add", "bench.test", "--algorithm", "both"]]);
        } else await relay.start(PORT.sink, tag);
        const base = await warmUp(relay, sink, kb, o.warmup, o.loadCpu);
        const e2e = await measureE2e(relay, sink, base, kb, sessions, o.count, tag, o.loadCpu);
        const row: DkimRow = { ...e2e, variant, round, signatures: signaturesInDump(dump) };
        rows.push(row);
        log(
          `${o.phase.padEnd(6)} relay ${variant.padEnd(8)} round ${round}: ${
            row.rate.toFixed(0)
          } msg/s delivered (${row.delivered}/${row.messages} in ${row.seconds.toFixed(1)} s), ${
            fmt(row.cpuMsPerMsg, 3)
          } ms CPU/msg, ${row.signatures} DKIM-Signature(s) per message, load ${fmt(row.load1Before, 2)}${
            row.capped ? " [time cap]" : ""
          }${row.error ? ` ERROR ${row.error}` : ""}`,
        );
      } catch (error) {
        log(`${o.phase.padEnd(6)} relay ${variant}: ERROR ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        await relay.stop();
        await sink.close();
        rmSync(dumpDir, { recursive: true, force: true });
      }
    }
  }
  return rows;
}

/**
 * Issue 11: signing at the speed of the crypto. The unsigned and signed runs
 * with the relay (all its threads) on CPU 0 and the load tools on CPU 1: the
 * rates are what one core of relay does, the signed one beside the unsigned.
 */
async function signingOnOneCore(): Promise<DkimRow[]> {
  if (cpus().length < 2) {
    throw new Error("the signing phase pins the relay and the load to two different CPUs; this machine has one");
  }
  return unsignedAndSigned(relaySut("0"), {
    phase: "signing",
    rounds: opts.rounds ?? PLAN.signingRounds,
    warmup: PLAN.signingWarmup,
    count: PLAN.signingCount,
    loadCpu: "1",
  });
}

function procStatus(pid: number): { rssKb: number; hwmKb: number; threads: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? NaN);
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM"), threads: field("Threads") };
}

interface RssResult {
  connections: number;
  greeted: number;
  idleRssMb: number;
  rssMb: number;
  hwmMb: number;
  afterLoadHwmMb?: number;
  seconds: number;
}

/** Open `n` SMTP connections to the relay, wait for every banner, keep them idle, sample /proc. */
async function idleRss(sut: Sut): Promise<RssResult> {
  await sut.start(PORT.park, "rss");
  const sockets: Socket[] = [];
  try {
    await sleep(1_000);
    const pid = sut.pid()!;
    const before = procStatus(pid);
    const t0 = now();
    let greeted = 0;
    const capMs = 30_000;
    await Promise.race([
      Promise.all(
        Array.from({ length: PLAN.idle }, () =>
          new Promise<void>((res) => {
            const s = connect(PORT.relay, HOST);
            sockets.push(s);
            let seen = false;
            s.on("data", (d) => {
              if (!seen && d.toString("latin1").startsWith("220")) {
                seen = true;
                greeted++;
                res();
              }
            });
            s.on("error", () => res());
            s.on("close", () => res());
          })),
      ),
      sleep(capMs),
    ]);
    const seconds = (now() - t0) / 1000;
    await sleep(2_000); // idle
    const at = procStatus(pid);
    return {
      connections: PLAN.idle,
      greeted,
      idleRssMb: before.rssKb / 1024,
      rssMb: at.rssKb / 1024,
      hwmMb: at.hwmKb / 1024,
      seconds,
    };
  } finally {
    for (const s of sockets) s.destroy();
    await sut.stop();
  }
}

/** Issue 13's shaping phase (scripts/bench-shaping.ts), on this harness's relay, sink and load. */
function shapingPhase(relay: RelaySut): Promise<ShapingResult> {
  // The sink is up for as long as the relay: a backlog that finds nobody listening would be deferred, not paced.
  let sink: Sink | undefined;
  return shapingBench({
    run: RUN,
    rounds: PLAN.shapingRounds,
    backlog: PLAN.shapingBacklog,
    waitS: PLAN.shapingWaitS,
    async start(tag, env, prefill) {
      sink = new Sink();
      await sink.open();
      return relay.startShaped(PORT.sink, tag, env, prefill);
    },
    async stop() {
      await relay.stop();
      await sink?.close();
      sink = undefined;
    },
    cpuSeconds: () => relay.cpuSeconds(),
    async e2e(tag) {
      const base = await warmUp(relay, sink!, 5);
      return measureE2e(relay, sink!, base, 5, 20, PLAN.e2eCount[5], tag);
    },
    log,
  });
}

/** Issue 14's suppressions phase (scripts/bench-suppressions.ts), with the relay this harness runs. */
function suppressionsPhase(relay: RelaySut): Promise<SuppressionsResult> {
  return suppressionsBench({
    run: join(RUN, "suppressions"),
    relay: relay.command,
    entries: PLAN.suppressionEntries,
    messages: PLAN.suppressionMessages,
    rounds: PLAN.suppressionRounds,
    concurrency: 32,
    cpuSecondsOf,
    log,
  });
}

/** Issue 15's operators phase (scripts/bench-operators.ts), on this harness's relay, sink and load. */
function operatorsPhase(relay: RelaySut): Promise<OperatorsResult> {
  let sink: Sink | undefined;
  return operatorsBench({
    rounds: PLAN.operatorsRounds,
    http: `http://${HOST}:${PORT.relayHttp}`,
    adminToken: ADMIN_TOKEN,
    async start(tag, env) {
      sink = new Sink();
      await sink.open();
      await relay.startShaped(PORT.sink, tag, env);
    },
    async stop() {
      await relay.stop();
      await sink?.close();
      sink = undefined;
    },
    async e2e(tag) {
      const base = await warmUp(relay, sink!, 5);
      return measureE2e(relay, sink!, base, 5, 20, PLAN.operatorsMessages, tag);
    },
    log,
  });
}

/** Issue 17's fleet phase (scripts/bench-fleet.ts), on this harness's relay and SMTP load, deliveries parked. */
async function fleetPhase(relay: RelaySut): Promise<FleetResult> {
  const park = new ParkingLot();
  await park.open();
  try {
    return await fleetBench({
      run: join(RUN, "fleet"),
      bun: BUN,
      relay: relay.command,
      entries: PLAN.fleetEntries,
      httpMessages: PLAN.fleetHttpMessages,
      lookupCalls: PLAN.fleetLookupCalls,
      rounds: opts.rounds ?? PLAN.fleetRounds,
      concurrency: 32,
      http: `http://${HOST}:${PORT.relayHttp}`,
      adminToken: ADMIN_TOKEN,
      async start(tag, env, commands) {
        try {
          return { dataDir: await relay.startWith(PORT.park, tag, commands, env) };
        } catch (error) {
          // Exit status 2: the configuration is refused, as serve would refuse it (a usage error).
          if (error instanceof CommandFailed && error.status === 2) {
            await relay.stop();
            return { refused: error.stderr.trim().split("\n")[0] ?? "" };
          }
          throw error;
        }
      },
      stop: () => relay.stop(),
      cpuSeconds: () => relay.cpuSeconds(),
      async smtpAccept() {
        await load(PORT.relay, 20, PLAN.fleetSmtpWarmup, 5 * KB, 30);
        run("sync", []);
        const [cpu0, threads0] = [relay.cpuSeconds(), relay.threads()];
        const r = await load(PORT.relay, 20, PLAN.fleetSmtpMessages, 5 * KB, PLAN.acceptCapS);
        const cpuMs = ((relay.cpuSeconds() - cpu0) * 1000) / Math.max(1, r.sent);
        return { ...r, cpuMs, threads: threadDelta(threads0, relay.threads()) };
      },
      spawn: (cmd, args, o) => start(cmd, args, o),
      kill: (child) => kill(child, "SIGTERM"),
      log,
    });
  } finally {
    await park.close();
  }
}

/**
 * Issue 18's milter phase (scripts/bench-milter.ts): the relay and Postfix
 * of this run, each without a milter and with rspamd, deliveries parked.
 */
async function milterPhase(relay: RelaySut | undefined, withPostfix: boolean): Promise<MilterResult> {
  const systems: MilterSystem[] = [...(relay ? ["relay" as const] : []), ...(withPostfix ? ["postfix" as const] : [])];
  const size: AcceptSize = {
    warmup: PLAN.milterWarmup,
    count: PLAN.milterCount,
    seconds: PLAN.milterSeconds,
    capS: PLAN.milterCapS,
  };
  const [kb, sessions] = [5, 20];
  const park = new ParkingLot();
  await park.open();
  let running: Sut | undefined;
  try {
    return await milterBench({
      run: join(RUN, "milter"),
      systems,
      rounds: opts.rounds ?? PLAN.milterRounds,
      kb,
      sessions,
      async start(system, milter, tag) {
        if (system === "relay") {
          running = relay!;
          await relay!.startWith(PORT.park, tag, [], milter ? { RELAY_MILTERS: `${milter} default=tempfail` } : {});
        } else {
          // No client name lookup, as the relay does none: given "localhost" (from /etc/hosts) rspamd looks the
          // client's names up in its DNS lists, each query waiting out its timeout here (no DNS server).
          const scanning = [`smtpd_milters = ${milter}`, "milter_protocol = 6", "milter_default_action = tempfail"];
          running = postfixSut(["smtpd_peername_lookup = no", ...(milter ? scanning : [])]);
          await running.start(PORT.park, tag);
        }
        return running.port;
      },
      async stop() {
        if (opts.cpuProf) park.drop();
        await running?.stop();
        running = undefined;
      },
      accept: (_system, tag, round) => warmAndAccept(running!, kb, sessions, round, tag, size),
      cpuSecondsOf,
      log,
    });
  } finally {
    await park.close();
  }
}

interface ListingCase {
  readonly name: string;
  readonly pages: number;
  readonly rows: number;
  readonly complete: boolean;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

interface ListingResult {
  readonly recipients: number;
  readonly limit: number;
  readonly results: ListingCase[];
}

/** Issue 15's queue listing (scripts/bench-queue-listing.ts), on dist/relay (built when missing). */
function listingPhase(): ListingResult {
  const bin = join(ROOT, "dist/relay");
  if (!existsSync(bin)) run(BUN, ["scripts/build.ts"], undefined, ROOT);
  const json = join(RUN, "listing.json");
  const out = run(BUN, [
    join(ROOT, "scripts/bench-queue-listing.ts"),
    "--recipients",
    String(PLAN.listingRecipients),
    "--binary",
    bin,
    "--json",
    json,
  ]);
  for (const line of out.trim().split("\n")) log(line);
  return JSON.parse(readFileSync(json, "utf8")) as ListingResult;
}

function listingReport(r: ListingResult): { lines: string[]; ratio: Record<string, unknown> } {
  const worst = Math.max(...r.results.map((c) => c.max));
  return {
    lines: [
      "",
      `### Queue listing (issue 15): GET /v1/queue/messages, ${r.limit} a page, ${
        r.recipients.toLocaleString("en")
      } queued (dist/relay)`,
      "",
      "| filter | pages | rows | p50 ms | p99 ms | max ms |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
      ...r.results.map((c) =>
        `| ${c.name} | ${c.pages}${c.complete ? "" : " (capped)"} | ${c.rows} | ${fmt(c.p50, 1)} | ${fmt(c.p99, 1)} | ${
          fmt(c.max, 1)
        } |`
      ),
      "",
      `Slowest page: ${fmt(worst, 1)} ms (target: every page under 100 ms).`,
    ],
    ratio: { phase: "listing", recipients: r.recipients, slowest_page_ms: worst },
  };
}

// ---------------------------------------------------------------- report

const fmt = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(d));
const ratio = (a?: number, b?: number) => (a && b ? a / b : undefined);
function median(values: number[]): number | undefined {
  if (!values.length) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function report(
  accept: AcceptRow[],
  e2e: E2eRow[],
  rss: RssResult | undefined,
  deep: DeepRow[],
  dkim?: DkimResult,
  signing?: DkimRow[],
  shaping?: ShapingResult,
  suppressions?: SuppressionsResult,
  operators?: OperatorsResult,
  listing?: ListingResult,
  fleet?: FleetResult,
  milter?: MilterResult,
) {
  const lines: string[] = [];
  const ratios: Record<string, unknown>[] = [];
  /**
   * One row per case: each system's median over the rounds its rows come
   * from (one, end to end), with its lowest and highest in brackets and the
   * relay/Postfix ratio of every round when there are several.
   */
  const table = (
    title: string,
    rows: readonly (AcceptRow | E2eRow)[],
    cases: readonly (readonly [number, number])[],
  ) => {
    const roundOf = (r: AcceptRow | E2eRow) => ("round" in r ? r.round : 1);
    const rounds = Math.max(1, ...rows.map(roundOf));
    const several = rounds > 1;
    lines.push(
      several
        ? `### ${title} (median of ${rounds} rounds; each system's lowest and highest in brackets)`
        : `### ${title}`,
      "",
      `| case | relay msg/s | Postfix msg/s | Haraka msg/s | relay/Postfix | relay/Haraka |${
        several ? " relay/Postfix by round |" : ""
      }`,
      `| --- | ---: | ---: | ---: | ---: | ---: |${several ? " --- |" : ""}`,
    );
    for (const [kb, c] of cases) {
      const all = (system: SystemName) => rows.filter((r) => r.system === system && r.kb === kb && r.sessions === c);
      const of = (system: SystemName) => all(system).filter((r) => !r.error);
      const cell = (system: SystemName) => {
        const rates = of(system).map((r) => r.rate);
        const failed = all(system).find((r) => r.error);
        if (!rates.length) return failed ? `${fmt(failed.rate)} (error)` : "–";
        const capped = of(system).some((r) => r.capped) ? "*" : "";
        return rates.length === 1
          ? `${fmt(rates[0])}${capped}`
          : `${fmt(median(rates))}${capped} (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))})`;
      };
      const [r, p, h] = (["relay", "postfix", "haraka"] as const).map((system) =>
        median(of(system).map((x) => x.rate))
      );
      const rp = ratio(r, p);
      const rh = ratio(r, h);
      const row: Record<string, unknown> = {
        phase: title,
        kb,
        sessions: c,
        relay: r,
        postfix: p,
        haraka: h,
        relay_over_postfix: rp,
        relay_over_haraka: rh,
      };
      let byRound = "";
      if (several) {
        const ratiosByRound = Array.from({ length: rounds }, (_, i) => {
          const inRound = (system: SystemName) => of(system).find((x) => roundOf(x) === i + 1)?.rate;
          return fmt(ratio(inRound("relay"), inRound("postfix")), 2);
        });
        row.relay_over_postfix_by_round = ratiosByRound;
        byRound = ` ${ratiosByRound.join(", ")} |`;
      }
      ratios.push(row);
      lines.push(
        `| ${kb} KB, ${c} sessions | ${cell("relay")} | ${cell("postfix")} | ${cell("haraka")} | ${fmt(rp, 2)}× | ${
          fmt(rh, 2)
        }× |${byRound}`,
      );
    }
    lines.push("");
  };
  if (accept.length) table("Durable acceptance", accept, [[5, 20], [5, 200], [50, 20], [50, 200]]);
  if (e2e.length) {
    table("End to end (accepted -> delivered to smtp-sink)", e2e, [[5, 20], [50, 20]]);
    const cpu = e2e.filter((r) => r.cpuMsPerMsg !== undefined);
    if (cpu.length) {
      lines.push(
        `Relay CPU time per delivered message: ${cpu.map((r) => `${r.kb} KB ${fmt(r.cpuMsPerMsg, 3)} ms`).join(", ")}.`,
        "",
      );
    }
  }
  if (deep.length) {
    lines.push(
      "### Deep queue (relay, end to end 5 KB x 20 sessions, N recipients queued and not due)",
      "",
      "| queued | round | msg/s | CPU ms/msg | start-up s | pre-fill s | load before |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const r of deep) {
      lines.push(
        `| ${r.queued.toLocaleString("en")} | ${r.round} | ${fmt(r.rate)}${r.capped ? "*" : ""} | ${
          fmt(r.cpuMsPerMsg, 3)
        } | ${fmt(r.startupS, 2)} | ${fmt(r.prefill.seconds, 1)} | ${fmt(r.load1Before, 2)} |`,
      );
    }
    const mean = (q: number, k: "cpuMsPerMsg" | "rate") => {
      const v = deep.filter((r) => r.queued === q).map((r) => r[k]).filter((x): x is number => x !== undefined);
      return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
    };
    const [lo, hi] = [Math.min(...opts.deep), Math.max(...opts.deep)];
    const cpuRatio = ratio(mean(hi, "cpuMsPerMsg"), mean(lo, "cpuMsPerMsg"));
    const rateRatio = ratio(mean(lo, "rate"), mean(hi, "rate"));
    ratios.push({
      phase: "deep queue",
      low: lo,
      high: hi,
      cpu_per_msg_high_over_low: cpuRatio,
      time_per_msg_high_over_low: rateRatio,
    });
    lines.push(
      "",
      `Cost at ${hi.toLocaleString("en")} over cost at ${
        lo.toLocaleString("en")
      } (means over rounds; target ≤ 1.25): CPU per message ${fmt(cpuRatio, 2)}×, wall time per message ${
        fmt(rateRatio, 2)
      }×.`,
    );
    const plans = deep.find((r) => r.queued === hi)?.prefill.queries;
    if (plans) {
      lines.push("", `Scheduler queries at ${hi.toLocaleString("en")} queued (plan, ms):`);
      for (const q of plans) lines.push(`- ${q.name}: ${q.plan.join(" / ")} — ${fmt(q.ms, 2)} ms`);
    }
    lines.push("");
  }
  if (rss) {
    lines.push(
      "### Relay memory, 1,000 idle SMTP connections",
      "",
      `${rss.greeted}/${rss.connections} banners in ${rss.seconds.toFixed(1)} s; RSS idle before ${
        fmt(rss.idleRssMb, 1)
      } MB, with the connections open VmRSS ${fmt(rss.rssMb, 1)} MB, VmHWM ${fmt(rss.hwmMb, 1)} MB (target < 150 MB)`,
      "",
    );
  }
  if (dkim) {
    lines.push(
      `### DKIM signing cost (issue 5): one core, ${dkim.signing.messages} messages of ${dkim.signing.bytes} bytes each (${dkim.signing.runtime})`,
      "",
      "| key | messages/s per core | ms per message |",
      "| --- | ---: | ---: |",
    );
    for (const r of dkim.signing.rows) lines.push(`| ${r.name} | ${fmt(r.perSecond)} | ${fmt(r.msEach, 3)} |`);
    lines.push(
      "",
      "End to end 5 KB x 20 sessions, relay only: no key for the sender's domain vs RSA-2048 + Ed25519 keys (two signatures per message):",
      "",
      "| run | round | msg/s | CPU ms/msg | signatures/msg | load before |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const r of dkim.e2e) {
      lines.push(
        `| ${r.variant} | ${r.round} | ${fmt(r.rate)}${r.capped ? "*" : ""} | ${
          fmt(r.cpuMsPerMsg, 3)
        } | ${r.signatures} | ${fmt(r.load1Before, 2)} |`,
      );
    }
    ratios.push({
      phase: "dkim",
      unsigned_cpu_ms: dkim.unsignedCpuMs,
      signed_cpu_ms: dkim.signedCpuMs,
      signing_cpu_ms: dkim.signingCpuMs,
      signing_share: dkim.share,
    });
    lines.push(
      "",
      `Relay CPU per message (means): unsigned ${fmt(dkim.unsignedCpuMs, 3)} ms, signed ${
        fmt(dkim.signedCpuMs, 3)
      } ms; signing ${fmt(dkim.signingCpuMs, 3)} ms = ${
        fmt(dkim.share === undefined ? undefined : dkim.share * 100, 0)
      }% of the signed end-to-end cost (the signer alone: ${
        fmt(dkim.signing.rows.find((r) => r.name.includes("+"))?.msEach, 3)
      } ms for both signatures).`,
      "",
    );
  }
  if (signing?.length) {
    const rounds = Math.max(...signing.map((r) => r.round));
    const of = (variant: DkimRow["variant"]) => signing.filter((r) => r.variant === variant && !r.error);
    const rate = (variant: DkimRow["variant"]) => median(of(variant).map((r) => r.rate));
    const cpu = (variant: DkimRow["variant"]) =>
      median(of(variant).map((r) => r.cpuMsPerMsg).filter((x): x is number => x !== undefined));
    const range = (variant: DkimRow["variant"]) => {
      const rates = of(variant).map((r) => r.rate);
      return rates.length > 1 ? ` (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))})` : "";
    };
    lines.push(
      `### Signing on one core (issue 11): end to end 5 KB x 20 sessions, relay on CPU 0, smtp-source and smtp-sink on CPU 1 (median of ${rounds} round${
        rounds > 1 ? "s" : ""
      })`,
      "",
      "| run | msg/s | relay CPU ms/msg | signatures/msg |",
      "| --- | ---: | ---: | ---: |",
      `| no key for bench.test (unsigned) | ${fmt(rate("unsigned"))}${range("unsigned")} | ${
        fmt(cpu("unsigned"), 3)
      } | ${of("unsigned")[0]?.signatures ?? "–"} |`,
      `| RSA-2048 + Ed25519 keys (signed) | ${fmt(rate("signed"))}${range("signed")} | ${fmt(cpu("signed"), 3)} | ${
        of("signed")[0]?.signatures ?? "–"
      } |`,
      "",
      `By round (unsigned / signed msg/s): ${
        Array.from({ length: rounds }, (_, i) => {
          const inRound = (variant: DkimRow["variant"]) => of(variant).find((r) => r.round === i + 1)?.rate;
          return `${fmt(inRound("unsigned"))} / ${fmt(inRound("signed"))}`;
        }).join(", ")
      }. Signing costs ${
        fmt((cpu("signed") ?? NaN) - (cpu("unsigned") ?? NaN), 3)
      } ms of relay CPU per message (medians).`,
      "",
    );
    ratios.push({
      phase: "signing",
      unsigned_rate: rate("unsigned"),
      signed_rate: rate("signed"),
      unsigned_cpu_ms: cpu("unsigned"),
      signed_cpu_ms: cpu("signed"),
    });
  }
  if (shaping) {
    const section = shapingReport(shaping);
    lines.push(...section.lines);
    ratios.push(section.ratio);
  }
  if (suppressions) {
    const section = suppressionsReport(suppressions);
    lines.push(...section.lines);
    ratios.push(section.ratio);
  }
  if (operators) {
    const section = operatorsReport(operators);
    lines.push(...section.lines);
    ratios.push(section.ratio);
  }
  if (listing) {
    const section = listingReport(listing);
    lines.push(...section.lines);
    ratios.push(section.ratio);
  }
  if (fleet) {
    const section = fleetReport(fleet);
    lines.push(...section.lines);
    ratios.push(section.ratio);
  }
  if (milter) {
    const section = milterReport(milter);
    lines.push(...section.lines);
    ratios.push(section.ratio);
  }
  lines.push("`*` = stopped by the time cap; the rate is what was done within it.");
  return { text: lines.join("\n"), ratios };
}

// ---------------------------------------------------------------- main

async function main() {
  mkdirSync(RUN, { recursive: true });
  for (const [name, port] of Object.entries(PORT)) {
    if (!(await portFree(port))) throw new Error(`port ${HOST}:${port} (${name}) is in use`);
  }
  const all: Record<SystemName, () => Sut> = { relay: relaySut, postfix: postfixSut, haraka: harakaSut };
  const suts = opts.systems.map((s) => all[s]());
  const started = new Date().toISOString();
  const t0 = now();

  const commit = spawnSync("git", [
    "-C",
    ROOT,
    "rev-parse",
    opts.relaySource === "head" || opts.relaySource === "worktree" || opts.relaySource === "dist"
      ? "HEAD"
      : opts.relaySource,
  ], { encoding: "utf8" }).stdout.trim();
  const dirty =
    spawnSync("git", ["-C", ROOT, "status", "--porcelain", "src"], { encoding: "utf8" }).stdout.trim() !== "";
  const meta = {
    started,
    loadAverageAtStart: readFileSync("/proc/loadavg", "utf8").trim(),
    quick: opts.quick,
    plan: PLAN,
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memGb: Math.round(totalmem() / 2 ** 30),
      kernel: version("uname", ["-r"]),
    },
    relay: { source: opts.relaySource, commit, worktreeDirty: dirty, bun: version(BUN, ["--version"]) },
    postfix: { version: version("postconf", ["-d", "-h", "mail_version"]) },
    haraka: {
      version: JSON.parse(readFileSync(join(BENCH, "haraka/node_modules/Haraka/package.json"), "utf8"))
        .version as string,
      node: process.versions.node ? version("node", ["--version"]) : "",
    },
    generator: "smtp-source (Postfix): -d (connection reuse), no PIPELINING, 1 recipient/message, -l message length",
    durability: Object.fromEntries(suts.map((s) => [s.name, s.durability])),
    concurrency: Object.fromEntries(suts.map((s) => [s.name, s.concurrencyNote])),
  };
  log(
    `relay ${opts.relaySource} @ ${commit.slice(0, 10)}${
      dirty && opts.relaySource === "worktree" ? " (dirty)" : ""
    }, Postfix ${meta.postfix.version}, Haraka ${meta.haraka.version}; ${
      opts.quick ? "quick" : "full"
    } run; load average ${meta.loadAverageAtStart}`,
  );

  let accept: AcceptRow[] = [];
  let e2e: E2eRow[] = [];
  let rss: RssResult | undefined;
  if (opts.phases.has("accept")) accept = await acceptance(suts);
  if (opts.phases.has("e2e")) e2e = await endToEnd(suts);
  const relay = suts.find((s) => s.name === "relay");
  if (opts.phases.has("rss") && relay) {
    rss = await idleRss(relay);
    log(
      `rss    relay 1,000 idle: VmRSS ${fmt(rss.rssMb, 1)} MB, VmHWM ${fmt(rss.hwmMb, 1)} MB (${rss.greeted} greeted)`,
    );
  }
  let deep: DeepRow[] = [];
  if (opts.phases.has("deep") && relay) deep = await deepQueue(relay as RelaySut);
  let dkim: DkimResult | undefined;
  if (opts.phases.has("dkim") && relay) dkim = await dkimCost(relay as RelaySut);
  let signing: DkimRow[] | undefined;
  if (opts.phases.has("signing") && relay) signing = await signingOnOneCore();
  let shaping: ShapingResult | undefined;
  if (opts.phases.has("shaping") && relay) shaping = await shapingPhase(relay as RelaySut);
  let suppressions: SuppressionsResult | undefined;
  if (opts.phases.has("suppressions") && relay) suppressions = await suppressionsPhase(relay as RelaySut);
  let operators: OperatorsResult | undefined;
  if (opts.phases.has("operators") && relay) operators = await operatorsPhase(relay as RelaySut);
  const listing = opts.phases.has("listing") && relay ? listingPhase() : undefined;
  const fleet = opts.phases.has("fleet") && relay ? await fleetPhase(relay as RelaySut) : undefined;
  const withPostfix = opts.systems.includes("postfix");
  const milter = opts.phases.has("milter") && (relay || withPostfix)
    ? await milterPhase(relay as RelaySut | undefined, withPostfix)
    : undefined;
  const { text, ratios } = report(
    accept,
    e2e,
    rss,
    deep,
    dkim,
    signing,
    shaping,
    suppressions,
    operators,
    listing,
    fleet,
    milter,
  );
  const elapsedS = (now() - t0) / 1000;
  mkdirSync(dirname(opts.json), { recursive: true });
  writeFileSync(
    opts.json,
    `${
      JSON.stringify(
        {
          ...meta,
          elapsedS,
          loadAverageAtEnd: readFileSync("/proc/loadavg", "utf8").trim(),
          acceptance: accept,
          endToEnd: e2e,
          idleRss: rss,
          deepQueue: deep,
          dkim,
          signing,
          shaping,
          suppressions,
          operators,
          listing,
          fleet,
          milter,
          ratios,
        },
        null,
        2,
      )
    }\n`,
  );
  console.log(text);
  console.log(`\n(${elapsedS.toFixed(0)} s; JSON in ${opts.json})`);
}

async function cleanup() {
  await Promise.all([...children].map((c) => kill(c, "SIGKILL", 3_000)));
  spawnSync("postfix", ["-c", join(BENCH, "postfix-etc"), "abort"], { stdio: "ignore" });
}

process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
process.on("SIGTERM", () => void cleanup().then(() => process.exit(143)));

main()
  .then(cleanup)
  .then(() => process.exit(0)) // stray handles (pipes of killed servers) must not keep the run alive
  .catch(async (error) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    await cleanup();
    process.exit(1);
  });
