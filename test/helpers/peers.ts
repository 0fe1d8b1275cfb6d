/**
 * Foreign SMTP peers from Debian packages, for interop tests:
 *   swaks                       (package swaks)             a client
 *   /usr/bin/python3 + smtplib  (package python3)           a client
 *   /usr/bin/python3 + aiosmtpd (package python3-aiosmtpd)  a destination server
 * `scripts/install-test-peers` installs them. Each `*Missing` constant here
 * and in the other helpers comes from `peerMissing`: a reason to skip (the
 * peer cannot run here) or undefined; with RELAY_REQUIRE_PEERS=1 (CI) a
 * missing peer is an error instead, so the suite cannot pass by skipping.
 *
 * Debian's own interpreter is used explicitly: a `python3` on PATH may be a
 * pyenv/venv interpreter without the Debian modules.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { canConnect } from "../../scripts/bench-serve.ts";
import { freePort } from "./relay-process.ts";

export { canConnect };

export const SWAKS = "/usr/bin/swaks";
export const PYTHON = "/usr/bin/python3";

/** The environment without what would point Debian's python at another installation. */
export function peerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith("RELAY_") || key.startsWith("PYTHON") || key.startsWith("PYENV")) {
      continue;
    }
    env[key] = value;
  }
  env.LC_ALL = "C.UTF-8";
  return env;
}

function pythonCan(module: string): boolean {
  if (!existsSync(PYTHON)) return false;
  const result = spawnSync(PYTHON, ["-c", `import ${module}`], { env: peerEnv(), stdio: "ignore", timeout: 20_000 });
  return result.status === 0;
}

export const NOT_INSTALLED = "is not installed";

/**
 * Why `peer` (from the Debian package(s) `debianPackage`) cannot run here,
 * for a test's `skip`, or undefined when nothing is wrong (`problem` falsy).
 * Under RELAY_REQUIRE_PEERS=1 a problem throws instead: the test file that
 * needs the peer fails, naming the peer and the package, rather than skip.
 */
export function peerMissing(
  peer: string,
  debianPackage: string,
  problem: string | false | undefined,
): string | undefined {
  const packages = debianPackage.includes(" ") ? "packages" : "package";
  return peerUnavailable(
    peer,
    problem,
    `Debian ${packages} ${debianPackage}; scripts/install-test-peers installs the test peers`,
  );
}

/** peerMissing for a peer that is not a Debian package: `origin` says where it comes from and what installs it. */
export function peerUnavailable(
  peer: string,
  problem: string | false | undefined,
  origin: string,
): string | undefined {
  if (!problem) return undefined;
  const text = `${peer} ${problem} (${origin})`;
  if (process.env.RELAY_REQUIRE_PEERS === "1") {
    throw new Error(`RELAY_REQUIRE_PEERS=1 and a test peer cannot run: ${text}`);
  }
  console.log(`[peers] skipping: ${text}`);
  return text;
}

export const swaksMissing: string | undefined = peerMissing(SWAKS, "swaks", !existsSync(SWAKS) && NOT_INSTALLED);
export const pythonMissing: string | undefined = peerMissing(
  `${PYTHON} (smtplib)`,
  "python3",
  !pythonCan("smtplib") && NOT_INSTALLED,
);
export const aiosmtpdMissing: string | undefined = pythonMissing ??
  peerMissing(`${PYTHON} module aiosmtpd`, "python3-aiosmtpd", !pythonCan("aiosmtpd.controller") && NOT_INSTALLED);

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a peer to completion (killed after `timeoutMs`, a safety net, not a threshold). */
export function runPeer(
  file: string,
  args: string[],
  options: { input?: string | Uint8Array; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((done) => {
    const child = spawn(file, args, { env: options.env ?? peerEnv(), stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      stderr += `\n[peers] ${file} killed after ${timeoutMs} ms\n`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      done({ code: 127, stdout, stderr: `${stderr}\n[peers] cannot start ${file}: ${error.message}\n` });
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      done({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

/** `swaks --server 127.0.0.1 --port P ...args`, never reading a config file or prompting. */
export function swaks(port: number, args: string[]): Promise<RunResult> {
  return runPeer(SWAKS, [
    "--server",
    "127.0.0.1",
    "--port",
    String(port),
    "--helo",
    "swaks.test",
    "--timeout",
    "30",
    ...args,
  ]);
}

/** What aiosmtpd handed to its handler for one message. */
export interface AiosmtpdMessage {
  peer: string;
  helo: string;
  mailFrom: string;
  mailOptions: string[];
  rcptTos: string[];
  /** The message bytes as received (envelope.original_content). */
  bytes: Buffer;
  data: string;
}

export interface Aiosmtpd {
  readonly port: number;
  readonly messages: AiosmtpdMessage[];
  readonly stderr: string;
  waitFor(predicate: (messages: AiosmtpdMessage[]) => boolean, timeoutMs?: number): Promise<AiosmtpdMessage[]>;
  close(): Promise<void>;
}

/**
 * An aiosmtpd Controller with a handler that prints one JSON line per message
 * on stdout. It also exits when its stdin closes, so it cannot outlive the
 * test process even if `close()` is never reached.
 */
const AIOSMTPD_SCRIPT = String.raw`
import base64, json, signal, sys, threading
from aiosmtpd.controller import Controller

class Handler:
    async def handle_DATA(self, server, session, envelope):
        record = {
            "peer": str(session.peer[0]) if session.peer else "",
            "helo": session.host_name or "",
            "mail_from": envelope.mail_from,
            "mail_options": list(envelope.mail_options or []),
            "rcpt_tos": list(envelope.rcpt_tos),
            "content": base64.b64encode(envelope.original_content).decode("ascii"),
        }
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
        return "250 2.0.0 Message accepted by aiosmtpd"

controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]), enable_SMTPUTF8=True)
controller.start()
sys.stdout.write("READY\n")
sys.stdout.flush()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
stop.wait()
controller.stop()
`;

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

export async function startAiosmtpd(): Promise<Aiosmtpd> {
  const port = await freePort();
  const child: ChildProcess = spawn(PYTHON, ["-u", "-c", AIOSMTPD_SCRIPT, String(port)], {
    env: peerEnv(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  const messages: AiosmtpdMessage[] = [];
  let stderr = "";
  let pending = "";
  let exited: number | undefined;
  const exitedPromise = new Promise<void>((done) => {
    child.once("error", (error) => {
      stderr += `\n[peers] cannot start ${PYTHON}: ${error.message}\n`;
      exited ??= 127;
      done();
    });
    child.once("exit", (code) => {
      exited = code ?? 128;
      done();
    });
  });
  child.stdin!.on("error", () => undefined);
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    pending += s;
    for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.startsWith("{")) continue;
      const r = JSON.parse(line);
      const bytes = Buffer.from(r.content, "base64");
      messages.push({
        peer: r.peer,
        helo: r.helo,
        mailFrom: r.mail_from,
        mailOptions: r.mail_options,
        rcptTos: r.rcpt_tos,
        bytes,
        data: bytes.toString("utf8"),
      });
    }
  });

  const close = async () => {
    if (exited === undefined) {
      child.stdin!.end();
      child.kill("SIGTERM");
      const killed = await Promise.race([exitedPromise.then(() => true), sleep(5_000).then(() => false)]);
      if (!killed) {
        child.kill("SIGKILL");
        await exitedPromise;
      }
    }
  };

  // Bounded wait for the port to accept connections; fail fast if python died.
  let ready = false;
  for (let i = 0; i < 150 && exited === undefined; i++) {
    if (await canConnect(port)) {
      ready = true;
      break;
    }
    await sleep(100);
  }
  if (!ready) {
    await close();
    throw new Error(`aiosmtpd did not listen on 127.0.0.1:${port} (exit ${exited ?? "none"}); stderr:\n${stderr}`);
  }

  return {
    port,
    messages,
    get stderr() {
      return stderr;
    },
    async waitFor(predicate, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(messages)) {
        if (Date.now() > deadline) {
          throw new Error(
            `aiosmtpd: condition not met within ${timeoutMs} ms (${messages.length} messages); stderr:\n${stderr}`,
          );
        }
        if (exited !== undefined) throw new Error(`aiosmtpd exited with ${exited}; stderr:\n${stderr}`);
        await sleep(50);
      }
      return messages;
    },
    close,
  };
}
