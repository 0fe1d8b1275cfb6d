/**
 * The benchmark proper (scripts/bench sets up the machine, then runs this
 * inside a loopback-only network namespace). Relay, Postfix and Haraka are
 * measured one after another with the same load generator, Postfix's
 * smtp-source: no PIPELINING, one connection per session reused for all its
 * messages (-d), one recipient per message.
 *
 *   1. durable acceptance: 5 KB and 50 KB at 20 and 200 sessions; deliveries
 *      are parked on a loopback port that accepts TCP and never greets, so
 *      only acceptance is measured (each system starts fresh per case);
 *   2. end to end: accepted -> delivered, counted at smtp-sink;
 *   3. the relay's RSS with 1,000 idle SMTP connections.
 *
 * Every load is bounded by a message count and a time cap (timeout(1)), and
 * every server started here is stopped at the end, also on failure.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";

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
  relaySource: "head" | "worktree" | "dist";
  phases: Set<"accept" | "e2e" | "rss">;
  json: string;
}

const HELP = `usage: scripts/bench [--quick] [--systems relay,postfix,haraka] [--relay head|worktree|dist]
                    [--only accept,e2e,rss] [--json FILE]
  --quick     smaller message counts and shorter time caps
  --relay     head: a snapshot of the committed HEAD (default, reproducible);
              worktree: src/ as it is now; dist: the built dist/relay
  --only      run only these phases
  --json      where to write the results (default .bench/results.json)`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    systems: ["relay", "postfix", "haraka"],
    relaySource: "head",
    phases: new Set(["accept", "e2e", "rss"]),
    json: join(BENCH, "results.json"),
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
    else if (a === "--only") o.phases = new Set(value().split(",") as ("accept" | "e2e" | "rss")[]);
    else if (a === "--json") o.json = resolve(value());
    else throw new Error(`unknown option ${a}\n${HELP}`);
  }
  for (const s of o.systems) if (!["relay", "postfix", "haraka"].includes(s)) throw new Error(`unknown system ${s}`);
  if (!["head", "worktree", "dist"].includes(o.relaySource)) throw new Error(`--relay: head, worktree or dist, not ${o.relaySource}`);
  return o;
}

const opts = parseArgs(process.argv.slice(2));

/** Counts and caps: every load stops at whichever comes first. */
const PLAN = opts.quick
  ? { acceptCount: { 5: 1500, 50: 800 }, acceptCapS: 12, e2eCount: { 5: 1000, 50: 500 }, e2eCapS: 25, warmup: 100, idle: 1000 }
  : { acceptCount: { 5: 10000, 50: 5000 }, acceptCapS: 30, e2eCount: { 5: 5000, 50: 2500 }, e2eCapS: 60, warmup: 200, idle: 1000 };

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();
const log = (line: string) => console.error(`bench: ${line}`);

function run(cmd: string, args: string[], env?: Record<string, string>): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`);
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
function start(cmd: string, args: string[], o: { env?: Record<string, string>; cwd?: string; out?: string }): ChildProcess {
  const child = spawn(cmd, args, {
    cwd: o.cwd ?? ROOT,
    env: { ...process.env, ...o.env },
    detached: true, // own process group, so the whole tree can be stopped
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  if (o.out) {
    const out = o.out;
    writeFileSync(out, "");
    const append = (d: Buffer) => writeFileSync(out, d, { flag: "a" });
    child.stdout!.on("data", append);
    child.stderr!.on("data", append);
  }
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
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Postfix's smtp-sink: accepts everything, counts messages (-c prints "mesg=N"). */
class Sink {
  private child: ChildProcess | undefined;
  private out = "";
  async open(): Promise<void> {
    this.out = "";
    this.child = start("smtp-sink", ["-u", "nobody", "-c", `${HOST}:${PORT.sink}`, "1024"], {});
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

function relaySut(): Sut {
  let child: ChildProcess | undefined;
  let cmd: string[] = [];
  let cwd = ROOT;
  if (opts.relaySource === "dist") {
    const bin = join(ROOT, "dist/relay");
    if (!existsSync(bin)) run(BUN, ["scripts/build.ts"]);
    cmd = [bin, "serve"];
  } else if (opts.relaySource === "worktree") {
    cmd = [BUN, "src/main.ts", "serve"];
  } else {
    // A snapshot of the committed HEAD, so that uncommitted edits do not leak into the numbers.
    cwd = join(BENCH, "relay-head");
    rmSync(cwd, { recursive: true, force: true });
    mkdirSync(cwd, { recursive: true });
    const tar = spawnSync("bash", ["-c", `git -C "${ROOT}" archive HEAD | tar -x -C "${cwd}"`], { encoding: "utf8" });
    if (tar.status !== 0) throw new Error(`git archive HEAD failed: ${tar.stderr}`);
    symlinkSync(join(ROOT, "node_modules"), join(cwd, "node_modules"));
    cmd = [BUN, "src/main.ts", "serve"];
  }
  return {
    name: "relay",
    port: PORT.relay,
    durability:
      "message, recipients and 'received' events committed in one libSQL transaction (WAL, synchronous=FULL: fsync of the WAL) before 250; concurrent DATAs share a commit (group commit)",
    concurrencyNote: "one process (Bun), delivery loop in the same process",
    async start(target, tag) {
      const data = join(RUN, `relay-${tag}`);
      rmSync(data, { recursive: true, force: true });
      child = start(cmd[0]!, cmd.slice(1), {
        cwd,
        out: join(RUN, `relay-${tag}.log`),
        env: {
          RELAY_DATA_DIR: data,
          RELAY_SMTP_LISTEN: `${HOST}:${PORT.relay}`,
          RELAY_HTTP_LISTEN: `${HOST}:${PORT.relayHttp}`,
          RELAY_ADMIN_TOKEN: "bench-admin-token-0123456789",
          RELAY_HOSTNAME: "relay.bench.test",
          RELAY_NODE_ID: "bench",
          RELAY_ROUTES: `*=${HOST}:${target}`,
          RELAY_DNS_SERVERS: `${HOST}:1`,
          RELAY_LOG_LEVEL: "warn",
          // The load comes from one address; Postfix exempts mynetworks from its per-client limits too.
          RELAY_MAX_CONNECTIONS: "5000",
          RELAY_MAX_CONNECTIONS_PER_IP: "5000",
        },
      });
      await waitForSmtp(PORT.relay, "relay");
    },
    async stop() {
      if (child) await kill(child, "SIGKILL");
      child = undefined;
    },
    pid: () => child?.pid,
  };
}

function postfixSut(): Sut {
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
    concurrencyNote: "one smtpd process per session (default_process_limit raised 100 -> 300 so 200 sessions all get one); defaults otherwise",
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

/** smtp-source: `sessions` connections, each reused for its messages (-d), no pipelining. */
async function load(port: number, sessions: number, count: number, bytes: number, capS: number): Promise<LoadResult> {
  const args = [
    "-s", "INT", "-k", `${capS + 5}s`, `${capS}s`,
    "smtp-source", "-c", "-d",
    "-s", String(sessions), "-m", String(count), "-l", String(bytes),
    "-M", "client.bench.test", "-f", "sender@bench.test", "-t", "rcpt@example.net",
    `${HOST}:${port}`,
  ];
  const t0 = now();
  const child = spawn("timeout", args, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString("latin1");
    if (out.length > 8192) out = out.slice(-1024);
  });
  child.stderr.on("data", (d: Buffer) => (err += d.toString("latin1")));
  const code: number = await new Promise((r) => child.on("exit", (c, s) => r(c ?? (s ? 128 : 1))));
  children.delete(child);
  const seconds = (now() - t0) / 1000;
  const counts = out.split(/[\r\n]+/).filter((s) => /^\d+$/.test(s));
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
}

async function acceptance(suts: Sut[]): Promise<AcceptRow[]> {
  const rows: AcceptRow[] = [];
  const park = new ParkingLot();
  await park.open();
  try {
    for (const kb of [5, 50] as const) {
      for (const sessions of [20, 200]) {
        for (const sut of suts) {
          const tag = `accept-${kb}k-${sessions}`;
          await sut.start(PORT.park, tag);
          try {
            // Warm-up with the same number of sessions (Postfix spawns its smtpd processes here), not counted.
            await load(sut.port, sessions, Math.max(PLAN.warmup, 2 * sessions), kb * KB, 20);
            const r = await load(sut.port, sessions, PLAN.acceptCount[kb], kb * KB, PLAN.acceptCapS);
            rows.push({ system: sut.name, kb, sessions, ...r });
            log(`accept ${sut.name.padEnd(7)} ${kb} KB x ${sessions}: ${r.rate.toFixed(0)} msg/s (${r.sent} in ${r.seconds.toFixed(1)} s${r.capped ? ", time cap" : ""})${r.error ? ` ERROR ${r.error}` : ""}`);
          } finally {
            await sut.stop();
          }
        }
      }
    }
  } finally {
    await park.close();
  }
  return rows;
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
        await load(sut.port, 10, PLAN.warmup, kb * KB, 20);
        const warmUntil = now() + 20_000;
        while (sink.count() < PLAN.warmup && now() < warmUntil) await sleep(50);
        const base = sink.count();
        const n = PLAN.e2eCount[kb];
        const t0 = now();
        const r = await load(sut.port, sessions, n, kb * KB, PLAN.e2eCapS);
        const acceptSeconds = (now() - t0) / 1000;
        const until = t0 + PLAN.e2eCapS * 1000;
        while (sink.count() - base < r.sent && now() < until) await sleep(20);
        const seconds = (now() - t0) / 1000;
        const delivered = sink.count() - base;
        const row: E2eRow = {
          system: sut.name, kb, sessions, messages: r.sent, delivered, acceptSeconds, seconds,
          rate: delivered / seconds, capped: delivered < r.sent || r.capped, load1: load1(),
        };
        if (r.error) row.error = r.error;
        rows.push(row);
        log(`e2e    ${sut.name.padEnd(7)} ${kb} KB x ${sessions}: ${row.rate.toFixed(0)} msg/s delivered (${delivered}/${r.sent} in ${seconds.toFixed(1)} s; accepted in ${acceptSeconds.toFixed(1)} s)${row.capped ? " [time cap]" : ""}${r.error ? ` ERROR ${r.error}` : ""}`);
      } finally {
        await sut.stop();
        await sink.close();
      }
    }
  }
  return rows;
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

// ---------------------------------------------------------------- report

const fmt = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(d));
const ratio = (a?: number, b?: number) => (a && b ? a / b : undefined);

function report(accept: AcceptRow[], e2e: E2eRow[], rss: RssResult | undefined) {
  const lines: string[] = [];
  const find = <T extends { system: SystemName; kb: number; sessions: number }>(rows: T[], s: SystemName, kb: number, c: number) =>
    rows.find((r) => r.system === s && r.kb === kb && r.sessions === c);
  const ratios: Record<string, unknown>[] = [];
  const table = (title: string, rows: (AcceptRow | E2eRow)[], cases: [number, number][]) => {
    lines.push(`### ${title}`, "", "| case | relay msg/s | Postfix msg/s | Haraka msg/s | relay/Postfix | relay/Haraka |", "| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const [kb, c] of cases) {
      const r = find(rows, "relay", kb, c);
      const p = find(rows, "postfix", kb, c);
      const h = find(rows, "haraka", kb, c);
      const mark = (x?: AcceptRow | E2eRow) => (x ? `${fmt(x.rate)}${x.error ? " (error)" : x.capped ? "*" : ""}` : "–");
      const rp = ratio(r?.rate, p?.rate);
      const rh = ratio(r?.rate, h?.rate);
      ratios.push({ phase: title, kb, sessions: c, relay: r?.rate, postfix: p?.rate, haraka: h?.rate, relay_over_postfix: rp, relay_over_haraka: rh });
      lines.push(`| ${kb} KB, ${c} sessions | ${mark(r)} | ${mark(p)} | ${mark(h)} | ${fmt(rp, 2)}× | ${fmt(rh, 2)}× |`);
    }
    lines.push("");
  };
  if (accept.length) table("Durable acceptance", accept, [[5, 20], [5, 200], [50, 20], [50, 200]]);
  if (e2e.length) table("End to end (accepted -> delivered to smtp-sink)", e2e, [[5, 20], [50, 20]]);
  if (rss) {
    lines.push(
      "### Relay memory, 1,000 idle SMTP connections",
      "",
      `${rss.greeted}/${rss.connections} banners in ${rss.seconds.toFixed(1)} s; RSS idle before ${fmt(rss.idleRssMb, 1)} MB, with the connections open VmRSS ${fmt(rss.rssMb, 1)} MB, VmHWM ${fmt(rss.hwmMb, 1)} MB (target < 150 MB)`,
      "",
    );
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

  const commit = spawnSync("git", ["-C", ROOT, "rev-parse", "HEAD"], { encoding: "utf8" }).stdout.trim();
  const dirty = spawnSync("git", ["-C", ROOT, "status", "--porcelain", "src"], { encoding: "utf8" }).stdout.trim() !== "";
  const meta = {
    started,
    quick: opts.quick,
    plan: PLAN,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGb: Math.round(totalmem() / 2 ** 30), kernel: version("uname", ["-r"]) },
    relay: { source: opts.relaySource, commit, worktreeDirty: dirty, bun: version(BUN, ["--version"]) },
    postfix: { version: version("postconf", ["-d", "-h", "mail_version"]) },
    haraka: { version: JSON.parse(readFileSync(join(BENCH, "haraka/node_modules/Haraka/package.json"), "utf8")).version as string, node: process.versions.node ? version("node", ["--version"]) : "" },
    generator: "smtp-source (Postfix): -d (connection reuse), no PIPELINING, 1 recipient/message, -l message length",
    durability: Object.fromEntries(suts.map((s) => [s.name, s.durability])),
    concurrency: Object.fromEntries(suts.map((s) => [s.name, s.concurrencyNote])),
  };
  log(`relay ${opts.relaySource} @ ${commit.slice(0, 10)}${dirty && opts.relaySource === "worktree" ? " (dirty)" : ""}, Postfix ${meta.postfix.version}, Haraka ${meta.haraka.version}; ${opts.quick ? "quick" : "full"} run`);

  let accept: AcceptRow[] = [];
  let e2e: E2eRow[] = [];
  let rss: RssResult | undefined;
  if (opts.phases.has("accept")) accept = await acceptance(suts);
  if (opts.phases.has("e2e")) e2e = await endToEnd(suts);
  const relay = suts.find((s) => s.name === "relay");
  if (opts.phases.has("rss") && relay) {
    rss = await idleRss(relay);
    log(`rss    relay 1,000 idle: VmRSS ${fmt(rss.rssMb, 1)} MB, VmHWM ${fmt(rss.hwmMb, 1)} MB (${rss.greeted} greeted)`);
  }
  const { text, ratios } = report(accept, e2e, rss);
  const elapsedS = (now() - t0) / 1000;
  mkdirSync(dirname(opts.json), { recursive: true });
  writeFileSync(opts.json, `${JSON.stringify({ ...meta, elapsedS, acceptance: accept, endToEnd: e2e, idleRss: rss, ratios }, null, 2)}\n`);
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
