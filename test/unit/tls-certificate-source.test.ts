import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import type { Logger, LogLevel } from "../../src/core/log.ts";
import { upgradeToTlsServer } from "../../src/platform/net.ts";
import { type CertificateSource, createCertificateSource } from "../../src/tls/certificate-source.ts";
import { generateSelfSigned, SELF_SIGNED_VALIDITY_MS } from "../../src/tls/self-signed.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

const DAY = 24 * 60 * 60 * 1000;
const dirs: string[] = [];
const sources: CertificateSource[] = [];

after(() => {
  for (const s of sources) s.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "relay-tls-"));
  dirs.push(dir);
  return dir;
}

/** A logger that keeps entries and lets a test wait for one (bounded, so a missing event fails instead of hanging). */
function recordingLog() {
  const entries: { level: LogLevel; message: string; fields: Record<string, unknown> }[] = [];
  const waiters: { test: (e: (typeof entries)[number]) => boolean; done: () => void }[] = [];
  const log: Logger = (level, message, fields = {}) => {
    const entry = { level, message, fields };
    entries.push(entry);
    for (const w of waiters.filter((w) => w.test(entry))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.done();
    }
  };
  const waitFor = (test: (e: (typeof entries)[number]) => boolean, what: string, afterIndex = entries.length) =>
    new Promise<void>((resolve, reject) => {
      if (entries.slice(afterIndex).some(test)) return resolve();
      const timer = setTimeout(
        () => reject(new Error(`no log entry: ${what}; got ${JSON.stringify(entries)}`)),
        20_000,
      );
      waiters.push({ test, done: () => (clearTimeout(timer), resolve()) });
    });
  return { log, entries, waitFor };
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** The fingerprint a TLS client sees when the server hands out `source.current()`. */
async function servedFingerprint(source: CertificateSource): Promise<string> {
  const server = net.createServer((socket) => {
    upgradeToTlsServer(socket, source.current(), 10_000).then(
      (secure) => secure.on("error", () => {}),
      () => socket.destroy(),
    );
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", () => ok()));
  const { port } = server.address() as net.AddressInfo;
  try {
    return await new Promise<string>((resolve, reject) => {
      const client = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, minVersion: "TLSv1.2" }, () => {
        const seen = client.getPeerCertificate().fingerprint256;
        client.end();
        resolve(seen);
      });
      client.once("error", reject);
    });
  } finally {
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}

async function pairFiles(dir: string, name = "mail.example") {
  const pems = await generateSelfSigned(name, Date.now());
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.key);
  return { ...pems, certFile, keyFile };
}

describe("certificate source: self-signed under the data dir", () => {
  it("generates a pair for the host name (CN and SAN, one year, key mode 0600)", async () => {
    const dataDir = tempDir();
    const clock = new FakeClock(Date.now());
    const { log, entries } = recordingLog();
    const source = await createCertificateSource({ dataDir, hostname: "relay.test", clock, log });
    sources.push(source);
    const certPem = readFileSync(join(dataDir, "tls", "cert.pem"), "utf8");
    const x509 = new X509Certificate(certPem);
    assert.equal(x509.subject, "CN=relay.test");
    assert.equal(x509.subjectAltName, "DNS:relay.test");
    assert.equal(Date.parse(x509.validTo) - Date.parse(x509.validFrom), SELF_SIGNED_VALIDITY_MS);
    assert.equal(Math.floor(clock.now() / 1000) * 1000, Date.parse(x509.validFrom));
    assert.equal(statSync(join(dataDir, "tls", "key.pem")).mode & 0o777, 0o600);
    assert.equal(source.info().origin, "generated");
    assert.equal(source.info().fingerprint256, x509.fingerprint256);
    assert.equal(await servedFingerprint(source), x509.fingerprint256);
    assert.ok(entries.some((e) => e.message === "generated a self-signed TLS certificate"));
  });

  it("reuses the pair at the next start, regenerates it once expired or for another host name", async () => {
    const dataDir = tempDir();
    const clock = new FakeClock(Date.now());
    const first = await createCertificateSource({ dataDir, hostname: "relay.test", clock });
    first.close();
    const original = readFileSync(join(dataDir, "tls", "cert.pem"), "utf8");

    await clock.advance(300 * DAY);
    const again = await createCertificateSource({ dataDir, hostname: "relay.test", clock });
    again.close();
    assert.equal(again.info().fingerprint256, first.info().fingerprint256, "still valid: reused");
    assert.equal(readFileSync(join(dataDir, "tls", "cert.pem"), "utf8"), original);

    await clock.advance(66 * DAY); // past the one-year validity
    const { log, entries } = recordingLog();
    const renewed = await createCertificateSource({ dataDir, hostname: "relay.test", clock, log });
    renewed.close();
    assert.notEqual(renewed.info().fingerprint256, first.info().fingerprint256, "expired: regenerated");
    assert.ok(renewed.info().notAfter > clock.now());
    assert.equal(fingerprint(readFileSync(join(dataDir, "tls", "cert.pem"), "utf8")), renewed.info().fingerprint256);
    assert.ok(entries.some((e) => /has expired; generating a new one/.test(e.message)));

    const renamed = await createCertificateSource({ dataDir, hostname: "mx.other.test", clock });
    renamed.close();
    assert.equal(
      new X509Certificate(readFileSync(join(dataDir, "tls", "cert.pem"), "utf8")).subjectAltName,
      "DNS:mx.other.test",
    );
  });

  it("regenerates a damaged pair instead of failing", async () => {
    const dataDir = tempDir();
    const first = await createCertificateSource({ dataDir, hostname: "relay.test" });
    first.close();
    writeFileSync(join(dataDir, "tls", "key.pem"), "garbage");
    const second = await createCertificateSource({ dataDir, hostname: "relay.test" });
    second.close();
    assert.notEqual(second.info().fingerprint256, first.info().fingerprint256);
  });

  it("regenerates while running when the certificate expires", async () => {
    const dataDir = tempDir();
    const clock = new FakeClock(Date.now());
    const source = await createCertificateSource({ dataDir, hostname: "relay.test", clock, pollIntervalMs: 60_000 });
    sources.push(source);
    const before = source.info().fingerprint256;
    await source.check();
    assert.equal(source.info().fingerprint256, before, "not expired: kept");
    await clock.advance(SELF_SIGNED_VALIDITY_MS + 1);
    await source.check();
    assert.notEqual(source.info().fingerprint256, before);
    assert.equal(await servedFingerprint(source), source.info().fingerprint256);
    assert.equal(fingerprint(readFileSync(join(dataDir, "tls", "cert.pem"), "utf8")), source.info().fingerprint256);
  });
});

describe("certificate source: RELAY_TLS_CERT_FILE / RELAY_TLS_KEY_FILE", () => {
  it("serves the given files and writes nothing under the data dir", async () => {
    const dir = tempDir();
    const dataDir = tempDir();
    const pair = await pairFiles(dir);
    const source = await createCertificateSource({
      certFile: pair.certFile,
      keyFile: pair.keyFile,
      dataDir,
      hostname: "relay.test",
    });
    sources.push(source);
    assert.equal(source.info().origin, "files");
    assert.equal(await servedFingerprint(source), fingerprint(pair.cert));
    assert.throws(() => statSync(join(dataDir, "tls")));
  });

  it("fails to start with an error naming the file and the problem", async () => {
    const dir = tempDir();
    const pair = await pairFiles(dir);
    const other = await generateSelfSigned("other.example", Date.now());
    const start = (certFile: string, keyFile: string) =>
      createCertificateSource({ certFile, keyFile, dataDir: dir, hostname: "relay.test" });

    const missing = join(dir, "missing.pem");
    await assert.rejects(
      start(missing, pair.keyFile),
      (e: Error) => e.message.includes(missing) && /cannot read/.test(e.message),
    );
    await assert.rejects(
      start(pair.certFile, missing),
      (e: Error) => e.message.includes(missing) && /cannot read/.test(e.message),
    );

    const notPem = join(dir, "not.pem");
    writeFileSync(notPem, "hello\n");
    await assert.rejects(
      start(notPem, pair.keyFile),
      (e: Error) => e.message.includes(notPem) && /BEGIN CERTIFICATE/.test(e.message),
    );
    await assert.rejects(
      start(pair.certFile, notPem),
      (e: Error) => e.message.includes(notPem) && /PRIVATE KEY/.test(e.message),
    );

    const brokenCert = join(dir, "broken.pem");
    writeFileSync(brokenCert, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    await assert.rejects(
      start(brokenCert, pair.keyFile),
      (e: Error) => e.message.includes(brokenCert) && /cannot parse/.test(e.message),
    );

    const otherKey = join(dir, "other-key.pem");
    writeFileSync(otherKey, other.key);
    await assert.rejects(
      start(pair.certFile, otherKey),
      (e: Error) => e.message === `TLS key ${otherKey} does not match the certificate in ${pair.certFile}`,
    );
  });

  it("reloads when the files change and serves the new certificate", async () => {
    const dir = tempDir();
    const pair = await pairFiles(dir);
    const { log, waitFor, entries } = recordingLog();
    const source = await createCertificateSource({
      certFile: pair.certFile,
      keyFile: pair.keyFile,
      dataDir: dir,
      hostname: "relay.test",
      log,
      pollIntervalMs: 25,
    });
    sources.push(source);
    assert.equal(await servedFingerprint(source), fingerprint(pair.cert));

    const next = await generateSelfSigned("mail.example", Date.now());
    const mark = entries.length;
    writeFileSync(pair.keyFile, next.key);
    writeFileSync(pair.certFile, next.cert);
    await waitFor((e) => e.message === "TLS certificate reloaded", "TLS certificate reloaded", mark);
    assert.equal(source.info().fingerprint256, fingerprint(next.cert));
    assert.equal(await servedFingerprint(source), fingerprint(next.cert));
  });

  it("keeps serving the old certificate when a reload fails (bad PEM, key mismatch), then takes a good one", async () => {
    const dir = tempDir();
    const pair = await pairFiles(dir);
    const { log, waitFor, entries } = recordingLog();
    const source = await createCertificateSource({
      certFile: pair.certFile,
      keyFile: pair.keyFile,
      dataDir: dir,
      hostname: "relay.test",
      log,
      pollIntervalMs: 25,
    });
    sources.push(source);
    const old = fingerprint(pair.cert);
    const failed = (pattern: RegExp) => (e: (typeof entries)[number]) =>
      e.level === "error" && /reload failed/.test(e.message) && pattern.test(String(e.fields.error));

    let mark = entries.length;
    writeFileSync(pair.certFile, "not a certificate\n");
    await waitFor(failed(/BEGIN CERTIFICATE/), "reload failed: not PEM", mark);
    assert.equal(source.info().fingerprint256, old);
    assert.equal(await servedFingerprint(source), old);

    const next = await generateSelfSigned("mail.example", Date.now());
    mark = entries.length;
    writeFileSync(pair.certFile, next.cert); // the new certificate with the old key
    await waitFor(failed(/does not match/), "reload failed: key mismatch", mark);
    assert.equal(await servedFingerprint(source), old);
    assert.equal(entries.filter(failed(/does not match/)).length, 1, "a failure is logged once, not at every poll");

    mark = entries.length;
    writeFileSync(pair.keyFile, next.key);
    await waitFor((e) => e.message === "TLS certificate reloaded", "TLS certificate reloaded", mark);
    assert.equal(await servedFingerprint(source), fingerprint(next.cert));
  });

  it("stops polling after close()", async () => {
    const dir = tempDir();
    const pair = await pairFiles(dir);
    const { log, entries } = recordingLog();
    const source = await createCertificateSource({
      certFile: pair.certFile,
      keyFile: pair.keyFile,
      dataDir: dir,
      hostname: "relay.test",
      log,
      pollIntervalMs: 10,
    });
    source.close();
    const next = await generateSelfSigned("mail.example", Date.now());
    writeFileSync(pair.keyFile, next.key);
    writeFileSync(pair.certFile, next.cert);
    // Two explicit checks apply the change (the second read confirms the files settled); no timer did it before.
    assert.equal(source.info().fingerprint256, fingerprint(pair.cert));
    assert.ok(!entries.some((e) => e.message === "TLS certificate reloaded"));
    await source.check();
    await source.check();
    assert.equal(source.info().fingerprint256, fingerprint(next.cert));
  });
});
