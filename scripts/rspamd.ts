/**
 * A private rspamd (Debian package rspamd), for the milter tests
 * (test/helpers/rspamd.ts) and the bench's milter phase: its proxy worker in
 * milter mode scanning by itself (self_scan), on a free loopback port, with
 * Debian's stock rules and everything else in a temporary directory. The
 * other workers are off, hyperscan is off (it compiles for seconds on
 * start), and DNS goes to a closed loopback port, so rspamd never reaches
 * beyond loopback: its RBL lookups and map downloads fail and count for
 * nothing. They fail by timing out (0.2 s a query, measured): rspamd looks a
 * message's client names up (HELO, reverse DNS) only when the MTA gives it a
 * client hostname, not "[IP]" or "unknown".
 *
 *   rspamd -f -i -c /etc/rspamd/rspamd.conf --var LOCAL_CONFDIR=DIR/local
 *     --var DBDIR=DIR/db --var RUNDIR=DIR/run --var LOGDIR=DIR/log
 *
 * with DIR/local/override.d/worker-proxy.inc, worker-normal.inc,
 * worker-controller.inc and DIR/local/local.d/options.inc as written below.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canConnect, freePort } from "./bench-serve.ts";

export const RSPAMD = "/usr/bin/rspamd";
export const RSPAMD_STOCK_CONFIG = "/etc/rspamd/rspamd.conf";

/** Whether rspamd and its stock configuration are installed. */
export const rspamdInstalled = (): boolean => existsSync(RSPAMD) && existsSync(RSPAMD_STOCK_CONFIG);

export interface Rspamd {
  /** The milter address of its proxy worker, "inet:127.0.0.1:PORT". */
  readonly address: string;
  /** rspamd's main process; its workers are its children. */
  readonly pid: number;
  /** rspamd's log so far, for a failing test's message. */
  log(): string;
  close(): Promise<void>;
}

/** The line rspamd logs (at info, the stock level) for every message it scanned, with its time and DNS queries. */
export const RSPAMD_SCAN_LINE = /rspamd_task_write_log: .*, time: ([\d.]+)ms, dns req: (\d+)/;

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

export async function startRspamd(): Promise<Rspamd> {
  const dir = mkdtempSync(join(tmpdir(), "relay-rspamd-"));
  const port = await freePort();
  for (const sub of ["local/override.d", "local/local.d", "db", "run", "log"]) {
    mkdirSync(join(dir, sub), { recursive: true });
  }
  writeFileSync(
    join(dir, "local/override.d/worker-proxy.inc"),
    `bind_socket = "127.0.0.1:${port}";\nmilter = yes;\ntimeout = 120s;\ncount = 1;\n` +
      `upstream "local" {\n  default = yes;\n  self_scan = yes;\n}\n`,
  );
  writeFileSync(join(dir, "local/override.d/worker-normal.inc"), "enabled = false;\n");
  writeFileSync(join(dir, "local/override.d/worker-controller.inc"), "enabled = false;\n");
  writeFileSync(
    join(dir, "local/local.d/options.inc"),
    `disable_hyperscan = true;\ndns {\n  nameserver = ["127.0.0.1:1"];\n  timeout = 0.2s;\n  retransmits = 1;\n}\n`,
  );
  // X-Spam-* fields on every message scanned, local and authenticated senders included (rspamd skips those by default).
  writeFileSync(
    join(dir, "local/local.d/milter_headers.conf"),
    `use = ["x-spamd-result", "x-spam-status", "x-spam-level"];\nskip_local = false;\nskip_authenticated = false;\n`,
  );
  const vars = { LOCAL_CONFDIR: "local", DBDIR: "db", RUNDIR: "run", LOGDIR: "log" };
  const child: ChildProcess = spawn(
    RSPAMD,
    [
      "-f",
      "-i", // the tests and the bench may run as root; rspamd refuses root workers without it
      "-c",
      RSPAMD_STOCK_CONFIG,
      ...Object.entries(vars).flatMap(([name, sub]) => ["--var", `${name}=${join(dir, sub)}`]),
    ],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (output += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (output += s));
  let exited: number | undefined;
  const exitedPromise = new Promise<void>((done) => {
    child.once("error", (error) => {
      output += `\n[rspamd] cannot start ${RSPAMD}: ${error.message}\n`;
      exited ??= 127;
      done();
    });
    child.once("exit", (code) => {
      exited = code ?? 128;
      done();
    });
  });
  const log = () => {
    const file = join(dir, "log/rspamd.log");
    return output + (existsSync(file) ? readFileSync(file, "utf8") : "");
  };
  const close = async () => {
    if (exited === undefined) {
      child.kill("SIGTERM");
      const stopped = await Promise.race([exitedPromise.then(() => true), sleep(10_000).then(() => false)]);
      if (!stopped) {
        child.kill("SIGKILL");
        await exitedPromise;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Loading the stock rules takes a few seconds; a bounded wait, failing fast if rspamd died.
  for (let i = 0; i < 600 && exited === undefined; i++) {
    if (await canConnect(port)) return { address: `inet:127.0.0.1:${port}`, pid: child.pid!, log, close };
    await sleep(100);
  }
  const text = log();
  await close();
  throw new Error(`rspamd did not listen on 127.0.0.1:${port} (exit ${exited ?? "none"}):\n${text.slice(-4000)}`);
}
