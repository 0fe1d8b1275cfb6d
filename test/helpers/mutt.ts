/**
 * Mutt (Debian package mutt: GnuTLS + GNU SASL build) as a batch-mode SMTP
 * submission client, for interop tests. `scripts/install-test-peers`
 * installs it; `muttMissing` is a reason to skip, or undefined (see `peerMissing`).
 *
 *   const run = await muttSend({ port, user, password, certPem, from, to, subject, body });
 *
 * Every run gets its own temporary HOME holding the muttrc and the
 * certificate file, never reads the user's or the system's configuration
 * (`-n -F muttrc`), and has no terminal: stdin is a pipe, TERM=dumb. The
 * relay's self-signed certificate is accepted non-interactively by listing
 * it in $certificate_file, which is how Mutt stores an "(a)ccept always"
 * answer: a certificate found there byte for byte is trusted.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NOT_INSTALLED, peerMissing, type RunResult } from "./peers.ts";

export const MUTT = "/usr/bin/mutt";

export const muttMissing: string | undefined = peerMissing(MUTT, "mutt", !existsSync(MUTT) && NOT_INSTALLED);

export interface MuttSend {
  /** The relay's SMTP port on 127.0.0.1. */
  port: number;
  user: string;
  password: string;
  /** PEM of the server certificate to trust (written to $certificate_file); none: an empty file. */
  certPem?: string;
  from: string;
  /** The From display name; default none (not the passwd entry of whoever runs the test). */
  realname?: string;
  to: string;
  subject: string;
  body: string;
  /** Safety net, not a threshold. Default 60 s. */
  timeoutMs?: number;
}

/** A muttrc string value in double quotes (backslash and double quote escaped). */
function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** `mutt -n -F <muttrc> -s <subject> -- <to> < body` with a fresh HOME; the temp dir is removed afterwards. */
export async function muttSend(options: MuttSend): Promise<RunResult & { muttrc: string }> {
  const home = mkdtempSync(join(tmpdir(), "relay-mutt-"));
  try {
    const certificateFile = join(home, "certificates");
    writeFileSync(certificateFile, options.certPem ?? "");
    const muttrc = [
      `set smtp_url=${quote(`smtp://${options.user}@127.0.0.1:${options.port}/`)}`,
      `set smtp_pass=${quote(options.password)}`,
      "set ssl_starttls=yes",
      "set ssl_force_tls=yes",
      "set ssl_verify_host=no",
      "set ssl_verify_dates=no",
      `set certificate_file=${quote(certificateFile)}`,
      `set from=${quote(options.from)}`,
      `set realname=${quote(options.realname ?? "")}`,
      "set use_envelope_from=yes",
      "set use_from=yes",
      "set hostname=sender.test",
      'set record=""',
      "set copy=no",
      "set postpone=no",
      `set folder=${quote(join(home, "Mail"))}`,
      `set spoolfile=${quote(join(home, "inbox"))}`,
      `set header_cache=""`,
      `set message_cachedir=""`,
      "set charset=utf-8",
      "set send_charset=us-ascii:utf-8",
      "",
    ].join("\n");
    const muttrcFile = join(home, "muttrc");
    writeFileSync(muttrcFile, muttrc);

    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (
        value === undefined || key.startsWith("RELAY_") || key.startsWith("MUTT") || key === "MAIL" || key === "EMAIL"
      ) continue;
      env[key] = value;
    }
    Object.assign(env, { HOME: home, TERM: "dumb", LC_ALL: "C.UTF-8", MAIL: join(home, "inbox"), TMPDIR: home });

    const timeoutMs = options.timeoutMs ?? 60_000;
    const args = ["-n", "-F", muttrcFile, "-s", options.subject, "--", options.to];
    const result = await new Promise<RunResult>((done) => {
      const child = spawn(MUTT, args, { cwd: home, env, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
      child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
      const timer = setTimeout(() => {
        stderr += `\n[mutt] killed after ${timeoutMs} ms\n`;
        child.kill("SIGKILL");
      }, timeoutMs);
      child.once("error", (error) => {
        clearTimeout(timer);
        done({ code: 127, stdout, stderr: `${stderr}\n[mutt] cannot start ${MUTT}: ${error.message}\n` });
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        done({ code: code ?? (signal ? 128 : 1), stdout, stderr });
      });
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.body);
    });
    return { ...result, muttrc };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
