/**
 * What scripts/crash kills: the built relay, or Postfix in the same harness
 * (its own main.cf and queue under a temporary directory, relaying to the
 * same sink), so that their duplicates per kill can be compared.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { masterCf } from "../test/helpers/postfix.ts";
import { type RelayProcess, startRelay } from "../test/helpers/relay-process.ts";

export interface CrashTarget {
  readonly name: "relay" | "postfix";
  readonly smtpPort: number;
  /** The HTTP API for submissions; none for Postfix. */
  readonly http?: { readonly port: number; readonly token: string };
  /** SIGKILL every process of it at once, then start it again on the same data; resolves once it answers. */
  killAndRestart(): Promise<void>;
  /** What it logged (the relay: every run's standard error), for --explain. */
  logs(): string;
  /** Stop it and remove its data. */
  close(): Promise<void>;
}

const ADMIN_TOKEN = "crash-test-admin-token-0123456789";
const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

export async function relayTarget(
  binary: string,
  ports: { smtp: number; http: number },
  env: Record<string, string>,
): Promise<CrashTarget> {
  const start = (dataDir?: string) =>
    startRelay({ binary, dataDir, smtpPort: ports.smtp, httpPort: ports.http, adminToken: ADMIN_TOKEN, env });
  let relay: RelayProcess = await start();
  const dataDir = relay.dataDir;
  let earlier = "";
  return {
    name: "relay",
    smtpPort: ports.smtp,
    http: { port: ports.http, token: ADMIN_TOKEN },
    async killAndRestart() {
      await relay.kill9();
      earlier += relay.stderr;
      relay = await start(dataDir);
    },
    logs: () => earlier + relay.stderr,
    async close() {
      await relay.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Whether Postfix is installed (scripts/bench and scripts/install-test-peers install it). */
export const postfixInstalled = (): boolean => spawnSync("postconf", ["-d", "mail_version"]).status === 0;

/** Until something on the port answers 220, at most `ms`. */
async function waitForBanner(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const banner = await new Promise<string>((done) => {
      const socket = connect({ port, host: "127.0.0.1" });
      let text = "";
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => {
        text += chunk;
        if (text.includes("\n")) socket.end();
      });
      socket.on("close", () => done(text));
      socket.on("error", () => done(""));
    });
    if (banner.startsWith("220")) return;
    await sleep(50);
  }
  throw new Error(`nothing answered 220 on 127.0.0.1:${port} within ${ms} ms`);
}

/**
 * Postfix as the benchmark runs it (scripts/bench-run.ts), relaying
 * everything to the sink; retries as soon as the relay's (RELAY_RETRY_SCHEDULE=1s)
 * so that both settle in the same time.
 */
export async function postfixTarget(smtpPort: number, mxPort: number): Promise<CrashTarget> {
  const dir = mkdtempSync(join(tmpdir(), "relay-crash-postfix-"));
  // The daemons run as the postfix user and open absolute paths under here.
  chmodSync(dir, 0o755);
  const etc = join(dir, "etc");
  const queue = join(dir, "queue");
  const data = join(dir, "data");
  for (const d of [etc, queue, data]) mkdirSync(d, { recursive: true });
  spawnSync("chown", ["postfix", data]);
  // With postlogd down (just after a kill), postsuper writes its warnings about the debris to the file itself,
  // as the postfix user: a file root created first is closed to it, and its fatal error stops the start.
  writeFileSync(join(dir, "maillog"), "", { mode: 0o640 });
  spawnSync("chown", ["postfix", join(dir, "maillog")]);
  writeFileSync(
    join(etc, "main.cf"),
    [
      "compatibility_level = 3.6",
      `queue_directory = ${queue}`,
      `data_directory = ${data}`,
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${dir}`,
      "myhostname = postfix.crash.test",
      "mydomain = crash.test",
      "myorigin = $myhostname",
      "mydestination =",
      "local_transport = error:no local delivery here",
      "inet_interfaces = 127.0.0.1",
      "inet_protocols = ipv4",
      "mynetworks = 127.0.0.0/8",
      "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
      `relayhost = [127.0.0.1]:${mxPort}`,
      "default_process_limit = 300",
      "smtpd_tls_security_level = none",
      "smtp_tls_security_level = none",
      "minimal_backoff_time = 1s",
      "maximal_backoff_time = 10s",
      "queue_run_delay = 1s",
      "biff = no",
      "",
    ].join("\n"),
  );
  writeFileSync(join(etc, "master.cf"), masterCf(smtpPort));
  const run = (args: string[]) => {
    const result = spawnSync(args[0]!, args.slice(1), { encoding: "utf8" });
    if (result.status !== 0) {
      const maillog = (() => {
        try {
          return readFileSync(join(dir, "maillog"), "utf8").slice(-2000);
        } catch {
          return "";
        }
      })();
      throw new Error(`${args.join(" ")}: exit ${result.status} ${result.stderr}${result.stdout}\n${maillog}`);
    }
  };
  run(["postfix", "-c", etc, "set-permissions"]);
  const start = async () => {
    run(["postfix", "-c", etc, "start"]);
    await waitForBanner(smtpPort, 30_000);
  };
  const master = () => Number(readFileSync(join(queue, "pid/master.pid"), "utf8").trim());
  /** The master and every child it started share its process group (it calls setsid). */
  const killAll = async () => {
    const pid = master();
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Gone already.
    }
    for (let i = 0; i < 100 && spawnSync("kill", ["-0", String(pid)]).status === 0; i++) await sleep(20);
  };
  await start();
  return {
    name: "postfix",
    logs: () => {
      try {
        return readFileSync(join(dir, "maillog"), "utf8");
      } catch {
        return "";
      }
    },
    smtpPort,
    async killAndRestart() {
      await killAll();
      await start();
    },
    async close() {
      await killAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
