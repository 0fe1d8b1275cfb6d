/**
 * testssl.sh (Debian package testssl.sh) as an auditor of a TLS server on
 * 127.0.0.1: it runs offline (the target is an address, `--nodns none`
 * looks nothing up, NXCONNECT keeps its openssl probes off DNS, and nothing
 * that phones out is asked for) and reports each finding in its flat JSON form.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NOT_INSTALLED, peerEnv, peerMissing, runPeer } from "./peers.ts";

export const TESTSSL = "/usr/bin/testssl";

export const testsslMissing: string | undefined = peerMissing(
  TESTSSL,
  "testssl.sh",
  !existsSync(TESTSSL) && NOT_INSTALLED,
);

/** One entry of testssl's flat JSON (`--jsonfile`). */
export interface TestsslFinding {
  readonly id: string;
  /** OK, INFO, DEBUG, LOW, MEDIUM, HIGH, CRITICAL, WARN or FATAL. */
  readonly severity: string;
  readonly finding: string;
}

export interface TestsslScan {
  readonly findings: readonly TestsslFinding[];
  /** What testssl printed, for assertion messages. */
  readonly output: string;
}

/**
 * The checks that say how good a server's TLS is: protocols (-p), cipher
 * categories (-s), forward secrecy (-f), the server's cipher order (-P) and
 * every vulnerability check (-U). Left out: the certificate (-S), client
 * simulations (-c), HTTP headers (-h), each single cipher (-e, -E).
 */
const CHECKS = ["-p", "-s", "-f", "-P", "-U"];

/** Scan 127.0.0.1:port, over SMTP STARTTLS (RFC 3207) when `starttls`, else TLS from the first byte. */
export async function testssl(port: number, options: { starttls: boolean }): Promise<TestsslScan> {
  const dir = mkdtempSync(join(tmpdir(), "relay-testssl-"));
  try {
    const json = join(dir, "findings.json");
    const run = await runPeer(TESTSSL, [
      "--quiet",
      "--color",
      "0",
      // Never stop to ask (stdin is closed); a problem still shows as a finding.
      "--warnings",
      "off",
      "--nodns",
      "none",
      ...CHECKS,
      "--jsonfile",
      json,
      ...(options.starttls ? ["-t", "smtp"] : []),
      `127.0.0.1:${port}`,
    ], {
      timeoutMs: 20 * 60_000,
      // Its probes of openssl's options connect to "invalid.", a DNS query each; port 0 of 127.0.0.1 needs none.
      env: { ...peerEnv(), NXCONNECT: "127.0.0.1:0" },
    });
    const output = `exit ${run.code}\n${run.stdout}\n${run.stderr}`;
    if (!existsSync(json)) throw new Error(`testssl wrote no JSON findings:\n${output}`);
    return { findings: JSON.parse(readFileSync(json, "utf8")) as TestsslFinding[], output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
