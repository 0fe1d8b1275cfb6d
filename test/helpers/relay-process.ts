/**
 * Run the real relay as a child process for end-to-end tests.
 *
 *   const relay = await startRelay({ env: { RELAY_ROUTES: "*=127.0.0.1:2526" } });
 *   await fetch(relay.url("/api/..."), { headers: { authorization: `Bearer ${relay.adminToken}` } });
 *   expect(await relay.stop()).toBe(0);
 *
 * By default it runs the source with Bun (`bun src/main.ts serve`); `runtime:
 * "deno"` runs `deno run --allow-all src/main.ts serve`; `binary` runs a
 * compiled executable (the test runner passes `RELAY_TEST_BINARY`), from an
 * empty working directory.
 *
 * Uses node:child_process, node:net and fetch only, so it works under
 * `bun test` and `deno test` alike.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { constants, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is test/helpers/relay-process.ts). */
export const repoRoot: string = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** The compiled binary the test runner built, when there is one. */
export const testBinary: string | undefined = process.env.RELAY_TEST_BINARY || undefined;

export type Runtime = "bun" | "deno";

export interface StartRelayOptions {
  /** Extra environment; wins over the defaults set here. */
  env?: Record<string, string>;
  /** Path of a compiled relay to run instead of the source. */
  binary?: string;
  /**
   * The command that runs the relay (the binary or the runtime), e.g.
   * qemu-aarch64-static -L DIR for an arm64 binary, or prlimit --nofile=N:N -- for a lower limit.
   */
  launcher?: readonly string[];
  /** Runtime for the source when no binary is given. Default "bun". */
  runtime?: Runtime;
  /** Reuse a data directory (a restart); default: a new temporary one. */
  dataDir?: string;
  /** Fixed ports (a restart on the same ports); default: free ones. */
  smtpPort?: number;
  httpPort?: number;
  /** Admin token; default: 32 random characters. */
  adminToken?: string;
  /** Arguments after the program; default ["serve"]. */
  args?: string[];
  /** How long to wait for `GET /readyz` to answer 200. Default 30 s. */
  readyTimeoutMs?: number;
}

export interface RelayProcess {
  readonly smtpPort: number;
  readonly httpPort: number;
  readonly dataDir: string;
  readonly adminToken: string;
  readonly pid: number;
  /** `http://127.0.0.1:<httpPort><path>` */
  url(path: string): string;
  /** Everything the process wrote so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Whether the process is still running. */
  readonly running: boolean;
  /** Resolves with the exit code (128 + signal number when killed by a signal). */
  readonly exited: Promise<number>;
  /**
   * Send `signal` (default SIGTERM) and wait for the exit code. Rejects (after
   * killing it with SIGKILL) when the process has not exited within
   * `timeoutMs` (default 20 s): a shutdown that hangs is a failure.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number>;
  /** SIGKILL, no chance to clean up; resolves with the exit code (137). */
  kill9(): Promise<number>;
  /** Stop (SIGKILL) if still running and remove the data directory if this helper made it. */
  cleanup(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/** `count` distinct free ports: all are held open until every one is chosen. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((ok, fail) => {
        server.once("error", fail);
        server.listen(0, "127.0.0.1", () => ok());
      });
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("freePorts: no port from listen(0)");
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((ok) => s.close(() => ok()))));
  }
}

/** The command that runs the relay with `args`. */
function command(
  options: { binary?: string; launcher?: readonly string[]; runtime?: Runtime },
  args: string[],
): { file: string; argv: string[] } {
  if (options.binary) {
    const [file, ...argv] = [...(options.launcher ?? []), options.binary, ...args];
    return { file: file!, argv };
  }
  const entry = join(repoRoot, "src", "main.ts");
  const [file, ...argv] = [
    ...(options.launcher ?? []),
    ...((options.runtime ?? "bun") === "deno"
      ? [join(repoRoot, "node_modules", ".bin", "deno"), "run", "--allow-all", entry]
      : [join(repoRoot, "node_modules", ".bin", "bun"), entry]),
    ...args,
  ];
  return { file: file!, argv };
}

/** The parent's environment without any RELAY_* variable, so the host's settings never leak into a test. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("RELAY_")) env[key] = value;
  }
  return env;
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (constants.signals[signal] ?? 0) : 0;
}

function tail(text: string, max = 4000): string {
  return text.length > max ? `...${text.slice(-max)}` : text;
}

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

export async function startRelay(options: StartRelayOptions = {}): Promise<RelayProcess> {
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "relay-test-"));
  let smtpPort = options.smtpPort;
  let httpPort = options.httpPort;
  if (smtpPort === undefined || httpPort === undefined) {
    const [a, b] = await freePorts(2);
    smtpPort ??= a!;
    httpPort ??= b!;
  }
  const adminToken = options.adminToken ?? randomBytes(24).toString("base64url"); // 32 characters
  const env = {
    ...baseEnv(),
    RELAY_SMTP_LISTEN: `127.0.0.1:${smtpPort}`,
    RELAY_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
    RELAY_DATA_DIR: dataDir,
    RELAY_ADMIN_TOKEN: adminToken,
    RELAY_HOSTNAME: "relay.test",
    RELAY_LOG_LEVEL: "warn",
    ...options.env,
  };
  const { file, argv } = command(options, options.args ?? ["serve"]);
  // A binary runs from its data directory: nothing of the repo around it.
  const cwd = options.binary ? dataDir : repoRoot;

  let stdout = "";
  let stderr = "";
  let exitCode: number | undefined;
  const child: ChildProcess = spawn(file, argv, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const exited = new Promise<number>((done) => {
    child.once("error", (error) => {
      stderr += `\n[relay-process] cannot start ${file}: ${error.message}\n`;
      exitCode ??= 127;
      done(exitCode);
    });
    child.once("exit", (code, signal) => {
      exitCode = code ?? 128 + signalNumber(signal);
      // Let the pipes drain so stdout/stderr are complete, but do not hang on them.
      const closed = new Promise<void>((ok) => child.once("close", () => ok()));
      void Promise.race([closed, sleep(500)]).then(() => done(exitCode!));
    });
  });

  const url = (path: string) => `http://127.0.0.1:${httpPort}${path.startsWith("/") ? path : `/${path}`}`;

  // Signals go through process.kill(pid), not child.kill(): Deno's
  // node:child_process reports any child it has kill()ed as dead of that
  // signal even when the child handled it and exited 0, and refuses a second
  // kill() (denoland/deno#36643), which would break SIGTERM-then-SIGKILL.
  const signal = (name: NodeJS.Signals) => {
    if (exitCode !== undefined || child.pid === undefined) return;
    try {
      process.kill(child.pid, name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error; // ESRCH: already gone
    }
  };

  const kill9 = async (): Promise<number> => {
    signal("SIGKILL");
    return exited;
  };

  const stop = async (name: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000): Promise<number> => {
    if (exitCode !== undefined) return exited;
    signal(name);
    const timedOut = Symbol("timeout");
    const result = await Promise.race([exited, sleep(timeoutMs).then(() => timedOut)]);
    if (result !== timedOut) return result as number;
    await kill9();
    throw new Error(
      `relay (pid ${child.pid}) did not exit within ${timeoutMs} ms of ${name}; stderr:\n${tail(stderr)}`,
    );
  };

  const relay: RelayProcess = {
    smtpPort,
    httpPort,
    dataDir,
    adminToken,
    pid: child.pid ?? -1,
    url,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get running() {
      return exitCode === undefined;
    },
    exited,
    stop,
    kill9,
    async cleanup() {
      await kill9();
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };

  // Wait for readiness: bounded tries, fail fast if the process dies.
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const intervalMs = 100;
  const tries = Math.max(1, Math.ceil(readyTimeoutMs / intervalMs));
  let lastProblem = "no answer yet";
  for (let i = 0; i < tries; i++) {
    if (exitCode !== undefined) break;
    try {
      const response = await fetch(url("/readyz"), { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.status === 200) return relay;
      lastProblem = `GET /readyz answered ${response.status}`;
    } catch (error) {
      lastProblem = `GET /readyz: ${(error as Error).message}`;
    }
    await sleep(intervalMs);
  }
  const why = exitCode !== undefined
    ? `exited with ${exitCode} before it was ready`
    : `not ready after ${readyTimeoutMs} ms (${lastProblem})`;
  await kill9();
  await relay.exited;
  if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
  throw new Error(
    `relay (${[file, ...argv].join(" ")}) ${why}\n--- stderr ---\n${tail(stderr)}\n--- stdout ---\n${tail(stdout)}`,
  );
}

export interface RunRelayOptions {
  env?: Record<string, string>;
  binary?: string;
  launcher?: readonly string[];
  runtime?: Runtime;
  /** Data directory; default: a new temporary one (removed afterwards). */
  dataDir?: string;
  /** Written to stdin, then stdin is closed (e.g. a password for `users add`). */
  input?: string;
  timeoutMs?: number;
  /** Send SIGINT (an operator's Ctrl-C) once the output so far satisfies this: a command that runs until stopped. */
  interruptWhen?: (stdout: string) => boolean;
}

/** Run a one-shot command (`version`, `migrate`, `users add ...`) and collect its output. */
export async function runRelay(
  args: string[],
  options: RunRelayOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "relay-test-"));
  const env = {
    ...baseEnv(),
    RELAY_DATA_DIR: dataDir,
    RELAY_HOSTNAME: "relay.test",
    RELAY_LOG_LEVEL: "warn",
    ...options.env,
  };
  const { file, argv } = command(options, args);
  try {
    return await new Promise((done) => {
      const child = spawn(file, argv, {
        cwd: options.binary ? dataDir : repoRoot,
        env,
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      let interrupted = false;
      child.stdout.setEncoding("utf8").on("data", (s: string) => {
        stdout += s;
        if (interrupted || !options.interruptWhen?.(stdout)) return;
        interrupted = true;
        child.kill("SIGINT");
      });
      child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
      const timer = setTimeout(() => {
        stderr += `\n[relay-process] killed after ${options.timeoutMs ?? 30_000} ms\n`;
        child.kill("SIGKILL");
      }, options.timeoutMs ?? 30_000);
      child.once("error", (error) => {
        clearTimeout(timer);
        done({ code: 127, stdout, stderr: `${stderr}\n[relay-process] cannot start ${file}: ${error.message}\n` });
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        done({ code: code ?? 128 + signalNumber(signal), stdout, stderr });
      });
      child.stdin.on("error", () => {}); // the command may exit without reading stdin
      child.stdin.end(options.input ?? "");
    });
  } finally {
    if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}
