/**
 * A private ClamAV (Debian packages clamav-daemon and clamav-milter) for
 * milter tests: clamd with a database of one signature, written here, for
 * the EICAR test file, and clamav-milter in front of it on a free loopback
 * port. No signatures are downloaded and nothing is written outside a
 * temporary directory (sockets, logs, scan files):
 *
 *   clamd -c DIR/clamd.conf                  LocalSocket DIR/clamd.sock
 *   clamav-milter -c DIR/clamav-milter.conf  MilterSocket inet:PORT@127.0.0.1
 *
 * Both stay in the foreground under the user the tests run as, who owns
 * DIR (no User option, so neither switches to another, even as root).
 * OnInfected Reject and OnFail Defer, as a mail system would set them, and
 * AddHeader Replace, as Debian's stock configuration has it: every verdict
 * on a scanned message comes with an X-Virus-Status field.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canConnect, NOT_INSTALLED, peerMissing } from "./peers.ts";
import { freePort } from "./relay-process.ts";
import { waitUntil } from "./wait-until.ts";

export const CLAMD = "/usr/sbin/clamd";
export const CLAMAV_MILTER = "/usr/sbin/clamav-milter";

export const clamavMissing: string | undefined = peerMissing(
  `${CLAMD} and ${CLAMAV_MILTER}`,
  "clamav-daemon clamav-milter",
  !(existsSync(CLAMD) && existsSync(CLAMAV_MILTER)) && NOT_INSTALLED,
);

/** The EICAR anti-virus test file: these 68 bytes, and nothing else, are the file. */
export const EICAR = String.raw`X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`;

/** The name the helper's database gives EICAR (clamd adds ".UNOFFICIAL", as to any signature not ClamAV's own). */
export const EICAR_SIGNATURE = "Eicar-Test-Signature";

export interface ClamAV {
  /** clamav-milter's address, "inet:127.0.0.1:PORT". */
  readonly address: string;
  /** What clamd and clamav-milter logged so far, for a failing test's message. */
  log(): string;
  /** Stops clamd alone: clamav-milter then fails to scan (OnFail). */
  stopClamd(): Promise<void>;
  /** Stops both and removes the temporary directory. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

/** One foreground daemon: its output collected, stopped with `signal` (SIGKILL if it lingers). */
interface Daemon {
  output(): string;
  exited(): number | undefined;
  stop(): Promise<void>;
}

function startDaemon(file: string, args: string[], cwd: string, signal: NodeJS.Signals): Daemon {
  const name = file.slice(file.lastIndexOf("/") + 1);
  const child: ChildProcess = spawn(file, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (output += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (output += s));
  let exited: number | undefined;
  const exitedPromise = new Promise<void>((done) => {
    child.once("error", (error) => {
      output += `\n[${name}] cannot start ${file}: ${error.message}\n`;
      exited ??= 127;
      done();
    });
    child.once("exit", (code) => {
      exited = code ?? 128;
      done();
    });
  });
  return {
    output: () => output,
    exited: () => exited,
    async stop() {
      if (exited !== undefined) return;
      child.kill(signal);
      const stopped = await Promise.race([exitedPromise.then(() => true), sleep(10_000).then(() => false)]);
      if (!stopped) {
        child.kill("SIGKILL");
        await exitedPromise;
      }
    },
  };
}

/** Whether clamd on the unix socket `path` answers PING with PONG (its "z" form: NUL-terminated). */
function clamdAnswers(path: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ path });
    let answer = "";
    socket.setTimeout(2_000);
    socket.once("connect", () => socket.write("zPING\0"));
    socket.setEncoding("utf8").on("data", (s: string) => (answer += s));
    socket.once("end", () => done(answer === "PONG\0"));
    socket.once("timeout", () => {
      socket.destroy();
      done(false);
    });
    socket.once("error", () => done(false));
  });
}

/** Waits (bounded) until `ready` holds; an error if the daemon exits first. */
async function started(daemon: Daemon, ready: () => Promise<boolean>, what: string): Promise<void> {
  const state = await waitUntil(async () => daemon.exited() ?? (await ready()), (state) => state !== false, {
    what,
    every: 100,
  });
  if (state !== true) throw new Error(`${what}: it exited with ${state}`);
}

function config(options: Record<string, string>): string {
  return Object.entries(options).map(([name, value]) => `${name} ${value}\n`).join("");
}

export async function startClamAV(): Promise<ClamAV> {
  const dir = mkdtempSync(join(tmpdir(), "relay-clamav-"));
  const socket = join(dir, "clamd.sock");
  const port = await freePort();
  const eicar = new TextEncoder().encode(EICAR);
  // A .hdb line is md5:size:name of a whole file (ClamAV's signature format).
  writeFileSync(
    join(dir, "eicar.hdb"),
    `${createHash("md5").update(eicar).digest("hex")}:${eicar.length}:${EICAR_SIGNATURE}\n`,
  );
  writeFileSync(
    join(dir, "clamd.conf"),
    config({
      Foreground: "yes",
      DatabaseDirectory: dir,
      LocalSocket: socket,
      TemporaryDirectory: dir,
      LogFile: join(dir, "clamd.log"),
      LogSyslog: "no",
    }),
  );
  writeFileSync(
    join(dir, "clamav-milter.conf"),
    config({
      Foreground: "yes",
      MilterSocket: `inet:${port}@127.0.0.1`,
      ClamdSocket: `unix:${socket}`,
      OnInfected: "Reject",
      OnFail: "Defer",
      TemporaryDirectory: dir,
      LogFile: join(dir, "clamav-milter.log"),
      LogSyslog: "no",
      LogInfected: "Basic",
      AddHeader: "Replace",
    }),
  );
  const daemons: Daemon[] = [];
  const log = () =>
    daemons.map((daemon) => daemon.output()).join("") +
    ["clamd.log", "clamav-milter.log"].map((file) => join(dir, file)).filter(existsSync)
      .map((file) => readFileSync(file, "utf8")).join("");
  const stop = async () => {
    for (const daemon of [...daemons].reverse()) await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  // clamav-milter probes clamd when it starts, so clamd comes first, and is
  // ready once it answers: it listens only after loading its database.
  const clamd = startDaemon(CLAMD, ["-c", join(dir, "clamd.conf")], dir, "SIGTERM");
  daemons.push(clamd);
  try {
    await started(clamd, () => clamdAnswers(socket), `clamd answering on ${socket}`);
    // libmilter acts on SIGTERM only when its listener's wait next times out,
    // about 5 s; clamav-milter keeps nothing that a SIGKILL would lose.
    const milter = startDaemon(CLAMAV_MILTER, ["-c", join(dir, "clamav-milter.conf")], dir, "SIGKILL");
    daemons.push(milter);
    await started(milter, () => canConnect(port), `clamav-milter listening on 127.0.0.1:${port}`);
  } catch (error) {
    const text = log();
    await stop();
    throw new Error(`${(error as Error).message}\n${text.slice(-4000)}`);
  }
  return { address: `inet:127.0.0.1:${port}`, log, stopClamd: () => clamd.stop(), stop };
}
