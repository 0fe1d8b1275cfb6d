/**
 * A throwaway PKI for TLS tests, made with the openssl command line: one CA
 * (written to `caFile`, for RELAY_TLS_CA_FILE) and leaves it signs, or
 * self-signed ones. P-256 keys: quick to make.
 *
 *   const pki = makePki();
 *   const mx = pki.leaf(["mx.example.test"]);            // signed by the CA
 *   const rogue = pki.leaf(["mx.example.test"], { selfSigned: true });
 *   pki.cleanup();
 *
 * Also a minimal HTTPS server for MTA-STS policies on 127.0.0.1 (RFC 8461
 * 3.3), answering per Host header, and the DNS zone of such a domain.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isIP } from "node:net";
import { join } from "node:path";
import { after, before } from "node:test";
import * as tls from "node:tls";
import type { ZoneEntry } from "../fixtures/dns-server.ts";

export interface Identity {
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  /** The CA certificate, PEM. */
  readonly ca: string;
  /** The CA certificate's file. */
  readonly caFile: string;
  /**
   * A server certificate for `names` (subjectAltName DNS entries, IP entries
   * for addresses), signed by the CA unless selfSigned; `expired`: its
   * validity ended a day before it began; `days`: valid this many days
   * (default 1).
   */
  leaf(names: readonly string[], options?: { selfSigned?: boolean; expired?: boolean; days?: number }): Identity;
  cleanup(): void;
}

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "relay-pki-"));
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run(
    "req",
    "-x509",
    ...curve,
    "-days",
    "2",
    "-subj",
    "/CN=relay test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
  );
  let serial = 0;
  return {
    dir,
    ca: readFileSync(join(dir, "ca.crt"), "utf8"),
    caFile: join(dir, "ca.crt"),
    leaf(names, options = {}) {
      const base = `leaf${++serial}`;
      const altNames = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
      const ext =
        `subjectAltName=${altNames}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`;
      writeFileSync(join(dir, `${base}.ext`), ext);
      if (options.selfSigned) {
        run(
          "req",
          "-x509",
          ...curve,
          "-days",
          String(options.days ?? 1),
          "-subj",
          `/CN=${names[0]}`,
          "-keyout",
          `${base}.key`,
          "-out",
          `${base}.crt`,
          "-addext",
          `subjectAltName=${altNames}`,
        );
      } else {
        run("req", "-new", ...curve, "-subj", `/CN=${names[0]}`, "-keyout", `${base}.key`, "-out", `${base}.csr`);
        run(
          "x509",
          "-req",
          "-in",
          `${base}.csr`,
          "-CA",
          "ca.crt",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-days",
          options.expired ? "-1" : String(options.days ?? 1),
          "-extfile",
          `${base}.ext`,
          "-out",
          `${base}.crt`,
        );
      }
      return {
        cert: readFileSync(join(dir, `${base}.crt`), "utf8"),
        key: readFileSync(join(dir, `${base}.key`), "utf8"),
      };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A self-signed certificate for `name`, for a server whose clients do not verify it (or must fail to). */
export function selfSignedIdentity(name = "localhost"): Identity {
  const pki = makePki();
  try {
    return pki.leaf([name], { selfSigned: true });
  } finally {
    pki.cleanup();
  }
}

export interface PolicyServer {
  readonly port: number;
  /** Host header of every request, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

/**
 * HTTPS on 127.0.0.1 serving `/.well-known/mta-sts.txt`: `policies` maps a
 * policy host (`mta-sts.<domain>`) to the policy text; unknown hosts get 404.
 */
export async function startPolicyServer(
  identity: Identity,
  policies: Readonly<Record<string, string>>,
): Promise<PolicyServer> {
  const requests: string[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: identity.cert, key: identity.key, minVersion: "TLSv1.2" }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let head = "";
    socket.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      const host = (/\r\nhost:\s*([^\r:]+)/i.exec(head)?.[1] ?? "").toLowerCase();
      const path = /^GET (\S+) HTTP\/1\.1\r\n/.exec(head)?.[1];
      requests.push(host);
      const body = path === "/.well-known/mta-sts.txt" ? policies[host] : undefined;
      const response = body === undefined
        ? "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        : `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${
          Buffer.byteLength(body)
        }\r\nConnection: close\r\n\r\n${body}`;
      head = "";
      socket.end(response);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    requests,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A test CA and an HTTPS policy server, for the tests of one file. */
export interface MtaStsFixture {
  readonly pki: TestPki;
  readonly policies: PolicyServer;
  /** The relay's environment for them: the CA trusted, policies fetched from the server, 5 s timeouts; then `extra`. */
  relayEnv(extra?: Record<string, string>): Record<string, string>;
}

/**
 * Call at a test file's top level: before its tests, makes a test CA and
 * starts a policy server serving `policies` (policy host -> policy text) with
 * a certificate for every policy host; after them, stops and removes both.
 */
export function mtaStsFixture(policies: Readonly<Record<string, string>>): MtaStsFixture {
  let started: { pki: TestPki; policies: PolicyServer } | undefined;
  const get = () => {
    if (!started) throw new Error("the MTA-STS fixture is used before it started");
    return started;
  };
  before(async () => {
    const pki = makePki();
    started = { pki, policies: await startPolicyServer(pki.leaf(Object.keys(policies)), policies) };
  });
  after(async () => {
    await started?.policies.close();
    started?.pki.cleanup();
  });
  return {
    get pki() {
      return get().pki;
    },
    get policies() {
      return get().policies;
    },
    relayEnv(extra = {}) {
      return {
        RELAY_TLS_CA_FILE: get().pki.caFile,
        RELAY_MTA_STS_PORT: String(get().policies.port),
        RELAY_COMMAND_TIMEOUT: "5s",
        RELAY_CONNECT_TIMEOUT: "5s",
        ...extra,
      };
    },
  };
}

/** An MTA-STS policy body (RFC 8461 3.2). */
export function policyText(mode: "enforce" | "testing" | "none", mx: readonly string[], maxAge = 86400): string {
  return ["version: STSv1", `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ""].join("\r\n");
}

/** A domain whose MX is `mx` (on 127.0.0.1), with an MTA-STS record and policy host when `sts`. */
export function mxDomainZone(name: string, mx: string, sts: boolean): Record<string, ZoneEntry> {
  return {
    [name]: { MX: [{ preference: 10, exchange: mx }] },
    [mx]: { A: ["127.0.0.1"] },
    ...(sts
      ? { [`_mta-sts.${name}`]: { TXT: ["v=STSv1; id=20250101T000000;"] }, [`mta-sts.${name}`]: { A: ["127.0.0.1"] } }
      : {}),
  };
}
