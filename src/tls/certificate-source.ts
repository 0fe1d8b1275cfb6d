import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { clearInterval, setInterval } from "node:timers";
import { type Clock, systemClock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { SecureContext } from "../platform/net.ts";
import { loadCertificate, type LoadedCertificate } from "./load.ts";
import { generateSelfSigned, selfSignedPaths, writeSelfSigned } from "./self-signed.ts";

export interface CertificateSourceOptions {
  /** RELAY_TLS_CERT_FILE and RELAY_TLS_KEY_FILE: both or neither. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** RELAY_DATA_DIR: without files, the self-signed pair lives in `<dataDir>/tls/`. */
  readonly dataDir: string;
  /** RELAY_HOSTNAME: CN and SAN of a generated certificate. */
  readonly hostname: string;
  readonly clock?: Clock;
  readonly log?: Logger;
  /**
   * How often the files are read for changes (and a generated certificate
   * checked for expiry). Default 2000 ms. A change is applied once two
   * successive reads agree, so a pair caught half-rewritten is not loaded.
   */
  readonly pollIntervalMs?: number;
}

export interface CertificateInfo {
  /** "files": the operator's files; "generated": the self-signed pair under the data dir. */
  readonly origin: "files" | "generated";
  readonly certFile: string;
  readonly keyFile: string;
  readonly fingerprint256: string;
  readonly subject: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** The server certificate for the SMTP listeners (STARTTLS and implicit TLS), kept current. */
export interface CertificateSource {
  /** The context to use for the next handshake. */
  current(): SecureContext;
  info(): CertificateInfo;
  /** Do now what the next poll would do (read the files, or check expiry). */
  check(): Promise<void>;
  /** Stop watching. */
  close(): void;
}

const DEFAULT_POLL_MS = 2_000;
/** After a failed regeneration, wait this long before trying again. */
const REGENERATE_RETRY_MS = 60 * 60 * 1000;

/**
 * With certFile/keyFile: load them (an Error naming the file and the problem
 * when that fails) and reload whenever their contents change; a reload that
 * fails keeps the previous certificate and logs why.
 *
 * Without: reuse `<dataDir>/tls/{cert,key}.pem` when it is valid for the host
 * name and not expired, else generate a self-signed certificate there;
 * regenerate it when it expires while running.
 *
 * Changes are found by reading the files on a timer (not fs.watch): it
 * behaves the same on Bun and Deno, sees a replaced symlink (certbot's
 * `live/`) and an editor's rename-over-the-file alike, and costs two small
 * reads per interval.
 */
export async function createCertificateSource(options: CertificateSourceOptions): Promise<CertificateSource> {
  const clock = options.clock ?? systemClock;
  const log: Logger = options.log ?? (() => {});
  const pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;

  if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
    throw new Error("TLS: a certificate file and a key file go together: give both or neither");
  }
  const origin = options.certFile !== undefined && options.keyFile !== undefined ? "files" : "generated";
  const paths = origin === "files"
    ? { certFile: options.certFile!, keyFile: options.keyFile! }
    : selfSignedPaths(options.dataDir);

  let loaded: LoadedCertificate;
  /** Digest of the contents `loaded` came from. */
  let loadedDigest: string;
  /** Contents seen at the previous poll that differ from `loaded`, waiting to settle. */
  let pendingDigest: string | undefined;
  /** Contents that failed to load, so the failure is logged once. */
  let failedDigest: string | undefined;
  let retryGenerationAt = 0;

  if (origin === "files") {
    const pems = await readPair(paths);
    loaded = loadCertificate(pems.cert, pems.key, paths);
    loadedDigest = digest(pems);
    if (loaded.notAfter <= clock.now()) {
      log(
        "warn",
        "TLS certificate has expired; serving it anyway until the file is replaced",
        describe(loaded, paths.certFile),
      );
    }
    log("info", "TLS certificate loaded", describe(loaded, paths.certFile));
  } else {
    const existing = await reuseGenerated();
    if (existing) {
      ({ loaded, loadedDigest } = existing);
    } else {
      ({ loaded, loadedDigest } = await generate());
    }
  }

  async function reuseGenerated(): Promise<{ loaded: LoadedCertificate; loadedDigest: string } | undefined> {
    let pems: { cert: string; key: string };
    try {
      pems = await readPair(paths);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      log("warn", "cannot read the generated TLS certificate; generating a new one", { error: message(error) });
      return undefined;
    }
    let candidate: LoadedCertificate;
    try {
      candidate = loadCertificate(pems.cert, pems.key, paths);
    } catch (error) {
      log("warn", "the generated TLS certificate is unusable; generating a new one", { error: message(error) });
      return undefined;
    }
    if (candidate.notAfter <= clock.now()) {
      log(
        "info",
        "the generated TLS certificate has expired; generating a new one",
        describe(candidate, paths.certFile),
      );
      return undefined;
    }
    if (!candidate.names(options.hostname)) {
      log(
        "info",
        `the generated TLS certificate does not name ${options.hostname}; generating a new one`,
        describe(candidate, paths.certFile),
      );
      return undefined;
    }
    log("info", "TLS certificate loaded", describe(candidate, paths.certFile));
    return { loaded: candidate, loadedDigest: digest(pems) };
  }

  async function generate(): Promise<{ loaded: LoadedCertificate; loadedDigest: string }> {
    const pems = await generateSelfSigned(options.hostname, clock.now());
    const fresh = loadCertificate(pems.cert, pems.key, paths);
    await writeSelfSigned(options.dataDir, pems);
    log("info", "generated a self-signed TLS certificate", {
      hostname: options.hostname,
      ...describe(fresh, paths.certFile),
    });
    return { loaded: fresh, loadedDigest: digest(pems) };
  }

  async function checkFiles(): Promise<void> {
    let seen: string;
    let pems: { cert: string; key: string } | undefined;
    let readError: string | undefined;
    try {
      pems = await readPair(paths);
      seen = digest(pems);
    } catch (error) {
      readError = message(error);
      seen = `unreadable:${readError}`;
    }
    if (seen === loadedDigest || seen === failedDigest) {
      pendingDigest = undefined;
      return;
    }
    if (seen !== pendingDigest) {
      pendingDigest = seen; // apply at the next poll if the files stay like this
      return;
    }
    pendingDigest = undefined;
    try {
      if (!pems) throw new Error(readError);
      const next = loadCertificate(pems.cert, pems.key, paths);
      loaded = next;
      loadedDigest = seen;
      failedDigest = undefined;
      log("info", "TLS certificate reloaded", describe(next, paths.certFile));
      if (next.notAfter <= clock.now()) {
        log("warn", "the reloaded TLS certificate has expired", describe(next, paths.certFile));
      }
    } catch (error) {
      failedDigest = seen;
      log("error", "TLS certificate reload failed; still serving the previous certificate", {
        error: message(error),
        fingerprint256: loaded.fingerprint256,
      });
    }
  }

  async function checkExpiry(): Promise<void> {
    const now = clock.now();
    if (loaded.notAfter > now || now < retryGenerationAt) return;
    try {
      ({ loaded, loadedDigest } = await generate());
    } catch (error) {
      retryGenerationAt = now + REGENERATE_RETRY_MS;
      log("error", "cannot regenerate the expired self-signed TLS certificate; still serving it", {
        error: message(error),
      });
    }
  }

  let running: Promise<void> | undefined;
  const check = (): Promise<void> => {
    running ??= (origin === "files" ? checkFiles() : checkExpiry()).finally(() => (running = undefined));
    return running;
  };

  let closed = false;
  const timer = setInterval(() => {
    if (!closed) void check();
  }, pollMs);
  timer.unref();

  return {
    current: () => loaded.context,
    info: () => ({
      origin,
      certFile: paths.certFile,
      keyFile: paths.keyFile,
      fingerprint256: loaded.fingerprint256,
      subject: loaded.subject,
      notBefore: loaded.notBefore,
      notAfter: loaded.notAfter,
    }),
    check,
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
}

async function readPair(paths: { certFile: string; keyFile: string }): Promise<{ cert: string; key: string }> {
  const cert = await readFile(paths.certFile, "utf8").catch((error: unknown) => {
    throw annotate(error, `TLS certificate ${paths.certFile}: cannot read it (${message(error)})`);
  });
  const key = await readFile(paths.keyFile, "utf8").catch((error: unknown) => {
    throw annotate(error, `TLS key ${paths.keyFile}: cannot read it (${message(error)})`);
  });
  return { cert, key };
}

/** A new Error with `text`, keeping the errno code so "not found" can be told apart. */
function annotate(error: unknown, text: string): Error {
  const result = new Error(text) as Error & { code?: unknown };
  if (error && typeof error === "object" && "code" in error) result.code = error.code;
  return result;
}

function isNotFound(error: unknown): boolean {
  return !!error && typeof error === "object" && "code" in error && error.code === "ENOENT";
}

function digest(pems: { cert: string; key: string }): string {
  return createHash("sha256").update(pems.cert).update("\0").update(pems.key).digest("hex");
}

function describe(certificate: LoadedCertificate, file: string): Record<string, unknown> {
  return {
    file,
    subject: certificate.subject,
    fingerprint256: certificate.fingerprint256,
    notAfter: new Date(certificate.notAfter).toISOString(),
  };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
