import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, chownSync, cpSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "libsql";
import { type DnsServer, startDnsServer, type Zone } from "../fixtures/dns-server.ts";
import { signJwt, type Sqld, sqldMissing, startSqld } from "../fixtures/sqld.ts";
import { startMilterPeer } from "../fixtures/milter-peer.ts";
import { makePki, type TestPki } from "../helpers/pki.ts";
import { freePorts, runRelay, startRelay } from "../helpers/relay-process.ts";

/**
 * `relay check` run as an operator runs it: the real command against a
 * real data directory, DNS from the fixture server on loopback, certificate
 * files made with openssl, ports taken by real listeners. Each test spoils
 * one thing of a setup that passes and reads the one line that says so.
 */

const HOSTNAME = "relay.test";
const SOURCE_IP = "127.0.0.1";

const goodZone: Zone = {
  [HOSTNAME]: { A: [SOURCE_IP] },
  "1.0.0.127.in-addr.arpa": { PTR: [HOSTNAME] },
};

let dns: DnsServer;
let pki: TestPki;
const scratch = mkdtempSync(join(tmpdir(), "relay-check-"));
let certFile: string;
let keyFile: string;
/** A data directory migrated by this relay, copied afresh for each test that needs one. */
let migrated: string;

before(async () => {
  dns = await startDnsServer(goodZone);
  pki = makePki();
  const good = pki.leaf([HOSTNAME], { days: 90 });
  certFile = writeFile("good.crt", good.cert);
  keyFile = writeFile("good.key", good.key);
  migrated = join(scratch, "migrated");
  const run = await runRelay(["migrate"], { dataDir: migrated });
  assert.equal(run.code, 0, run.stderr);
});

after(async () => {
  await dns.close();
  pki.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

function writeFile(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

/** A fresh data directory holding the migrated database. */
function dataDirCopy(): string {
  const dir = mkdtempSync(join(scratch, "data-"));
  cpSync(migrated, dir, { recursive: true });
  return dir;
}

interface CheckRun {
  code: number;
  lines: string[];
  stderr: string;
  /** The one line about `what` (its start after the status word). */
  line(what: string): string;
}

/** `relay check` with a setup that passes, `env` and `dataDir` spoiling it. */
async function check(options: { env?: Record<string, string>; dataDir?: string } = {}): Promise<CheckRun> {
  const [smtp, http] = await freePorts(2);
  const dataDir = options.dataDir ?? dataDirCopy();
  const run = await runRelay(["check"], {
    dataDir,
    env: {
      RELAY_HOSTNAME: HOSTNAME,
      RELAY_SOURCE_IP: SOURCE_IP,
      RELAY_DNS_SERVERS: `${dns.host}:${dns.port}`,
      RELAY_TLS_CERT_FILE: certFile,
      RELAY_TLS_KEY_FILE: keyFile,
      RELAY_SMTP_LISTEN: `127.0.0.1:${smtp}`,
      RELAY_HTTP_LISTEN: `127.0.0.1:${http}`,
      ...options.env,
    },
  });
  const lines = run.stdout.trimEnd().split("\n");
  return {
    code: run.code,
    lines,
    stderr: run.stderr,
    line(what) {
      const found = lines.filter((l) => l.replace(/^(PASS|WARN|FAIL) /, "").startsWith(what));
      assert.equal(found.length, 1, `one line about ${what} in:\n${run.stdout}\n${run.stderr}`);
      return found[0]!;
    },
  };
}

/**
 * Every file under `dir` with its mode, size and modification time: what a
 * check must leave as it was. Not the database's -shm: SQLite's shared
 * index of the WAL, where every reader (this check too) marks what it reads.
 */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (path: string) => {
    for (const name of readdirSync(path).filter((n) => !n.endsWith("-shm"))) {
      const child = join(path, name);
      const s = statSync(child);
      out[child] = `${s.mode.toString(8)} ${s.size} ${s.mtimeMs}`;
      if (s.isDirectory()) visit(child);
    }
  };
  visit(dir);
  return out;
}

describe("relay check", () => {
  it("passes a sound setup line by line, exits 0, and writes nothing", async () => {
    const dataDir = dataDirCopy();
    const before = snapshot(dataDir);
    const run = await check({ dataDir });
    assert.equal(run.code, 0, `${run.lines.join("\n")}\n${run.stderr}`);
    // Free space and the open-file limit depend on the machine: a WARN there is the check doing its job.
    const judged = run.lines.slice(0, -1).filter((l) => !/^(PASS|WARN) (free space for |open files: )/.test(l));
    assert.equal(run.lines.filter((l) => /^(PASS|WARN) open files: limit \d+ here holds /.test(l)).length, 1);
    assert.deepEqual(judged.filter((l) => !l.startsWith("PASS ")), []);
    assert.deepEqual(judged.map((l) => l.replace(/:.*/, "")), [
      "PASS configuration",
      `PASS RELAY_DATA_DIR ${dataDir}`,
      `PASS RELAY_SOURCE_IP ${SOURCE_IP}`,
      `PASS RELAY_HOSTNAME ${HOSTNAME} A`,
      `PASS PTR of ${SOURCE_IP}`,
      `PASS RELAY_TLS_CERT_FILE ${certFile}`,
      "PASS RELAY_SMTP_LISTEN 127.0.0.1",
      "PASS RELAY_HTTP_LISTEN 127.0.0.1",
      "PASS database file",
    ]);
    assert.match(run.line(`RELAY_HOSTNAME ${HOSTNAME} A`), /: resolves to RELAY_SOURCE_IP 127\.0\.0\.1$/);
    assert.match(run.line(`PTR of ${SOURCE_IP}`), /: names RELAY_HOSTNAME relay\.test$/);
    assert.match(run.line("RELAY_TLS_CERT_FILE"), /: names relay\.test, key matches, valid until \S+ \(8\d days\)$/);
    assert.match(run.line("RELAY_SMTP_LISTEN"), /^PASS RELAY_SMTP_LISTEN 127\.0\.0\.1:\d+: can listen$/);
    assert.match(run.line("RELAY_HTTP_LISTEN"), /^PASS RELAY_HTTP_LISTEN 127\.0\.0\.1:\d+: can listen$/);
    assert.match(run.line("database"), /: schema up to date \(\d+ migrations\)$/);
    assert.match(run.lines.at(-1)!, /^relay check: 0 FAIL, [01] WARN, \d+ PASS$/);
    assert.deepEqual(snapshot(dataDir), before);
  });

  it("a data directory that does not exist yet passes and is not made", async () => {
    const dataDir = join(scratch, "not-yet", "data");
    const run = await check({ dataDir });
    assert.equal(run.code, 0, run.lines.join("\n"));
    assert.equal(
      run.line("RELAY_DATA_DIR"),
      `PASS RELAY_DATA_DIR ${dataDir}: does not exist yet; serve creates it (mode 0700)`,
    );
    assert.match(
      run.line("database"),
      /^PASS database file:.*: does not exist yet; serve creates it with all \d+ migrations$/,
    );
    assert.throws(() => statSync(join(scratch, "not-yet")), { code: "ENOENT" });
  });

  describe("the configuration", () => {
    it("an invalid variable is listed as serve lists it, exit 2, and nothing is checked", async () => {
      const run = await check({ env: { RELAY_SOURCE_IP: "not-an-ip", RELAY_SMTP_LISTEN: "nowhere" } });
      assert.equal(run.code, 2);
      assert.match(run.stderr, /^relay: RELAY_SMTP_LISTEN: .*"nowhere"/m);
      assert.match(run.stderr, /^relay: RELAY_SOURCE_IP: expected an IPv4 or IPv6 address/m);
      assert.doesNotMatch(run.lines.join("\n"), /PASS|FAIL/);
    });

    it("a shaping file with problems is exit 2 naming the line and field, as for serve", async () => {
      const shaping = writeFile("shaping.yaml", "default:\n  connections: many\n");
      const run = await check({ env: { RELAY_SHAPING_FILE: shaping } });
      assert.equal(run.code, 2);
      assert.match(run.stderr, new RegExp(`^relay: .*${shaping}.*connections`, "m"));
    });
  });

  describe("the data directory", () => {
    it("FAIL when group or others can write in it", async () => {
      const dataDir = dataDirCopy();
      chmodSync(dataDir, 0o777);
      const run = await check({ dataDir });
      assert.equal(run.code, 1);
      assert.equal(
        run.line("RELAY_DATA_DIR"),
        `FAIL RELAY_DATA_DIR ${dataDir}: group or others can write: ${dataDir} (mode 0777); ` +
          `fix: chmod -R go-rwx ${dataDir}`,
      );
      assert.equal(statSync(dataDir).mode & 0o777, 0o777, "the check changed no mode");
    });

    it("WARN (exit 0) when group or others can only read in it: serve makes it private", async () => {
      const dataDir = dataDirCopy();
      chmodSync(join(dataDir, "relay.db"), 0o644);
      const run = await check({ dataDir });
      assert.equal(run.code, 0, run.lines.join("\n"));
      assert.equal(
        run.line("RELAY_DATA_DIR"),
        `WARN RELAY_DATA_DIR ${dataDir}: group or others can read: ${join(dataDir, "relay.db")} (mode 0644); ` +
          `serve makes it private at start; fix: chmod -R go-rwx ${dataDir}`,
      );
    });

    it("FAIL when another user owns something in it", {
      skip: process.getuid?.() !== 0 && "needs root to chown",
    }, async () => {
      const dataDir = dataDirCopy();
      chownSync(join(dataDir, "relay.db"), 4242, 4242);
      const run = await check({ dataDir });
      assert.equal(run.code, 1);
      assert.equal(
        run.line("RELAY_DATA_DIR"),
        `FAIL RELAY_DATA_DIR ${dataDir}: ${join(dataDir, "relay.db")} is owned by uid 4242, not by uid 0 that ` +
          `runs this check; fix: run the relay (and relay check) as its owner, or chown -R 0 ${dataDir}`,
      );
    });

    it("FAIL when it is a file, or cannot be created", async () => {
      const file = writeFile("a-file", "");
      const notDir = await check({ dataDir: file });
      assert.equal(notDir.code, 1);
      assert.equal(
        notDir.line("RELAY_DATA_DIR"),
        `FAIL RELAY_DATA_DIR ${file}: is not a directory; fix: point RELAY_DATA_DIR at a directory`,
      );
      const under = join(file, "data");
      const uncreatable = await check({ dataDir: under });
      assert.equal(uncreatable.code, 1);
      assert.equal(
        uncreatable.line("RELAY_DATA_DIR"),
        `FAIL RELAY_DATA_DIR ${under}: does not exist, and cannot be created: ${file} is not a writable directory; ` +
          `fix: create ${under} and give it to the relay's user`,
      );
    });
  });

  describe("the source address and its names", () => {
    it("FAIL when RELAY_SOURCE_IP is not an address of this host", async () => {
      const run = await check({ env: { RELAY_SOURCE_IP: "192.0.2.77" } });
      assert.equal(run.code, 1);
      assert.match(
        run.line("RELAY_SOURCE_IP"),
        /^FAIL RELAY_SOURCE_IP 192\.0\.2\.77: not an address of this host \(it has 127\.0\.0\.1.*\); fix: set RELAY_SOURCE_IP to one of them/,
      );
    });

    it("WARN (exit 0) when RELAY_SOURCE_IP is not set; the host name must still resolve", async () => {
      const run = await check({ env: { RELAY_SOURCE_IP: "" } });
      assert.equal(run.code, 0, run.lines.join("\n"));
      assert.match(run.line("RELAY_SOURCE_IP"), /^WARN RELAY_SOURCE_IP: not set: .*; fix: set RELAY_SOURCE_IP/);
      assert.equal(run.line("RELAY_HOSTNAME"), `PASS RELAY_HOSTNAME ${HOSTNAME}: resolves to 127.0.0.1`);
      assert.equal(run.lines.filter((l) => l.includes("PTR of")).length, 0);
    });

    it("FAIL when RELAY_HOSTNAME resolves elsewhere, or not at all", async () => {
      const elsewhere = await check({ env: { RELAY_HOSTNAME: "elsewhere.test" } });
      dns.setZone({ ...goodZone, "elsewhere.test": { A: ["192.0.2.9"] } });
      const wrong = await check({ env: { RELAY_HOSTNAME: "elsewhere.test" } });
      dns.setZone(goodZone);
      assert.equal(elsewhere.code, 1);
      assert.equal(
        elsewhere.line("RELAY_HOSTNAME"),
        "FAIL RELAY_HOSTNAME elsewhere.test A: no A record (NXDOMAIN), so it does not resolve to 127.0.0.1; " +
          "fix: publish elsewhere.test A 127.0.0.1",
      );
      assert.equal(wrong.code, 1);
      assert.equal(
        wrong.line("RELAY_HOSTNAME"),
        "FAIL RELAY_HOSTNAME elsewhere.test A: resolves to 192.0.2.9, not to RELAY_SOURCE_IP 127.0.0.1; " +
          "fix: publish elsewhere.test A 127.0.0.1",
      );
    });

    it("FAIL when the PTR of RELAY_SOURCE_IP is missing or names another host", async () => {
      dns.setZone({ [HOSTNAME]: { A: [SOURCE_IP] } });
      const missing = await check();
      dns.setZone({ [HOSTNAME]: { A: [SOURCE_IP] }, "1.0.0.127.in-addr.arpa": { PTR: ["localhost"] } });
      const other = await check();
      dns.setZone(goodZone);
      assert.equal(missing.code, 1);
      assert.equal(
        missing.line("PTR of"),
        "FAIL PTR of 127.0.0.1: no PTR record at 1.0.0.127.in-addr.arpa (NXDOMAIN); " +
          "fix: ask whoever runs 127.0.0.1 (your VPS provider) to set its PTR to relay.test",
      );
      assert.equal(other.code, 1);
      assert.match(
        other.line("PTR of"),
        /^FAIL PTR of 127\.0\.0\.1: names localhost, not RELAY_HOSTNAME relay\.test; fix: /,
      );
    });

    it("WARN, not FAIL, when DNS cannot be reached", async () => {
      const [silent] = await freePorts(1); // nothing listens there
      const run = await check({ env: { RELAY_DNS_SERVERS: `127.0.0.1:${silent}` } });
      assert.equal(run.code, 0, run.lines.join("\n"));
      assert.match(
        run.line("RELAY_HOSTNAME"),
        /^WARN RELAY_HOSTNAME relay\.test A: DNS could not be asked \((NETWORK|TIMEOUT)/,
      );
      assert.match(
        run.line("PTR of"),
        /^WARN PTR of 127\.0\.0\.1: DNS could not be asked .*; fix: check RELAY_DNS_SERVERS/,
      );
    });
  });

  describe("the certificate", () => {
    it("FAIL when it has expired", async () => {
      const expired = pki.leaf([HOSTNAME], { expired: true });
      const run = await check({
        env: {
          RELAY_TLS_CERT_FILE: writeFile("expired.crt", expired.cert),
          RELAY_TLS_KEY_FILE: writeFile("expired.key", expired.key),
        },
      });
      assert.equal(run.code, 1);
      assert.match(run.line("RELAY_TLS_CERT_FILE"), /: expired on \d{4}-\d\d-\d\d; fix: renew the certificate$/);
    });

    it("FAIL when the key is not the certificate's", async () => {
      const other = pki.leaf([HOSTNAME], { days: 90 });
      const run = await check({ env: { RELAY_TLS_KEY_FILE: writeFile("other.key", other.key) } });
      assert.equal(run.code, 1);
      assert.equal(
        run.line("RELAY_TLS_CERT_FILE"),
        `FAIL RELAY_TLS_CERT_FILE ${certFile}: TLS key ${join(scratch, "other.key")} does not match the certificate ` +
          `in ${certFile}; fix: give the certificate and the private key made with it`,
      );
    });

    it("FAIL when a file cannot be read, or is not a certificate", async () => {
      const missing = join(scratch, "missing.crt");
      const unreadable = await check({ env: { RELAY_TLS_CERT_FILE: missing } });
      assert.equal(unreadable.code, 1);
      assert.equal(
        unreadable.line("RELAY_TLS_CERT_FILE"),
        `FAIL RELAY_TLS_CERT_FILE ${missing}: cannot read it (ENOENT); fix: make it a file readable by the relay's user`,
      );
      const garbage = writeFile("garbage.crt", "not a certificate\n");
      const notPem = await check({ env: { RELAY_TLS_CERT_FILE: garbage } });
      assert.equal(notPem.code, 1);
      assert.match(notPem.line("RELAY_TLS_CERT_FILE"), /: TLS certificate .* no "-----BEGIN CERTIFICATE-----" block/);
    });

    it("WARN (exit 0) when it expires within two weeks, names another host, or is not set", async () => {
      const soon = pki.leaf([HOSTNAME], { days: 3 });
      const expiring = await check({
        env: {
          RELAY_TLS_CERT_FILE: writeFile("soon.crt", soon.cert),
          RELAY_TLS_KEY_FILE: writeFile("soon.key", soon.key),
        },
      });
      assert.equal(expiring.code, 0, expiring.lines.join("\n"));
      assert.match(
        expiring.line("RELAY_TLS_CERT_FILE"),
        /^WARN .*: expires in 2 days \(\S+\); fix: renew the certificate$/,
      );
      const other = pki.leaf(["other.test"], { days: 90 });
      const misnamed = await check({
        env: {
          RELAY_TLS_CERT_FILE: writeFile("other.crt", other.cert),
          RELAY_TLS_KEY_FILE: writeFile("other2.key", other.key),
        },
      });
      assert.equal(misnamed.code, 0, misnamed.lines.join("\n"));
      assert.match(
        misnamed.line("RELAY_TLS_CERT_FILE"),
        /^WARN .*: CN=other\.test, valid until .*, does not name RELAY_HOSTNAME relay\.test; fix: use a certificate for relay\.test$/,
      );
      const unset = await check({ env: { RELAY_TLS_CERT_FILE: "", RELAY_TLS_KEY_FILE: "" } });
      assert.equal(unset.code, 0, unset.lines.join("\n"));
      assert.match(
        unset.line("RELAY_TLS_CERT_FILE"),
        /^WARN RELAY_TLS_CERT_FILE: not set: serve uses a self-signed certificate/,
      );
    });
  });

  describe("the listen ports", () => {
    let taken: Server;
    let takenPort: number;
    before(async () => {
      taken = createServer();
      await new Promise<void>((ok) => taken.listen(0, "127.0.0.1", ok));
      takenPort = (taken.address() as { port: number }).port;
    });
    after(() => new Promise<void>((ok) => taken.close(() => ok())));

    it("FAIL naming the address when another process holds it", async () => {
      const run = await check({ env: { RELAY_SMTP_LISTEN: `127.0.0.1:${takenPort}` } });
      assert.equal(run.code, 1);
      assert.equal(
        run.line("RELAY_SMTP_LISTEN"),
        `FAIL RELAY_SMTP_LISTEN 127.0.0.1:${takenPort}: in use by another process (EADDRINUSE); ` +
          "fix: stop it (ss -ltnp shows it), or change RELAY_SMTP_LISTEN",
      );
    });

    it("FAIL when two listeners of the configuration share a port", async () => {
      const [port] = await freePorts(1);
      const run = await check({
        env: { RELAY_SMTP_LISTEN: `127.0.0.1:${port}`, RELAY_HTTP_LISTEN: `127.0.0.1:${port}` },
      });
      assert.equal(run.code, 1);
      assert.equal(
        run.line("RELAY_HTTP_LISTEN"),
        `FAIL RELAY_HTTP_LISTEN 127.0.0.1:${port}: the same port as RELAY_SMTP_LISTEN 127.0.0.1:${port}; ` +
          "fix: give each listener its own port",
      );
    });

    it("FAIL when the address is not this host's", async () => {
      const run = await check({ env: { RELAY_SMTPS_LISTEN: "192.0.2.77:4650" } });
      assert.equal(run.code, 1);
      assert.equal(
        run.line("RELAY_SMTPS_LISTEN"),
        "FAIL RELAY_SMTPS_LISTEN 192.0.2.77:4650: 192.0.2.77 is not an address of this host (EADDRNOTAVAIL); " +
          "fix: change RELAY_SMTPS_LISTEN",
      );
    });

    it(
      "says so, and passes, when the port is held by this relay serving from the same data directory",
      async () => {
        const relay = await startRelay({ dataDir: dataDirCopy() });
        try {
          const run = await check({
            dataDir: relay.dataDir,
            env: {
              RELAY_SMTP_LISTEN: `127.0.0.1:${relay.smtpPort}`,
              RELAY_HTTP_LISTEN: `127.0.0.1:${relay.httpPort}`,
            },
          });
          assert.equal(run.code, 0, run.lines.join("\n"));
          assert.equal(
            run.line("RELAY_SMTP_LISTEN"),
            `PASS RELAY_SMTP_LISTEN 127.0.0.1:${relay.smtpPort}: in use by this relay, which is serving from RELAY_DATA_DIR`,
          );
          assert.match(run.line("database"), /^PASS database .*: schema up to date/);
        } finally {
          assert.equal(await relay.stop(), 0);
        }
      },
    );
  });

  describe("the content scanners", () => {
    it("PASS for a milter that negotiates; FAIL for one that is down unless its default lets mail through", async () => {
      const peer = await startMilterPeer();
      try {
        const [free] = await freePorts(1);
        const down = `inet:127.0.0.1:${free}`;
        const run = await check({
          env: { RELAY_MILTERS: `${peer.address}, ${down} connect_timeout=1s` },
        });
        assert.equal(run.code, 1);
        assert.equal(
          run.line(`RELAY_MILTERS ${peer.address}`),
          `PASS RELAY_MILTERS ${peer.address}: answers, milter protocol version 6`,
        );
        assert.match(
          run.line(`RELAY_MILTERS ${down}`),
          /^FAIL RELAY_MILTERS inet:127\.0\.0\.1:\d+: cannot connect to milter .*: every message in scope is refused \(default=tempfail\); fix: start the scanner/,
        );
        const lenient = await check({ env: { RELAY_MILTERS: `${down} default=accept connect_timeout=1s` } });
        assert.equal(lenient.code, 0, lenient.lines.join("\n"));
        assert.match(lenient.line(`RELAY_MILTERS ${down}`), /^WARN .*mail goes through unscanned \(default=accept\)/);
      } finally {
        await peer.close();
      }
    });
  });

  describe("the database", () => {
    it("FAIL naming the migrations this binary does not know, and changes nothing", async () => {
      const dataDir = dataDirCopy();
      sql(dataDir, "INSERT INTO relay_migrations (tag, applied_at) VALUES ('9999_from_the_future', 1)");
      assert.deepEqual(readdirSync(dataDir), ["relay.db"]);
      const before = snapshot(dataDir);
      const run = await check({ dataDir });
      assert.equal(run.code, 1);
      assert.equal(
        run.line("database"),
        `FAIL database file:${dataDir}/relay.db: its schema is newer than this relay: it records migrations this ` +
          "binary does not know: 9999_from_the_future; fix: run the relay version that made them, or restore the " +
          "backup taken before the upgrade",
      );
      assert.deepEqual(snapshot(dataDir), before);
      assert.deepEqual(readdirSync(dataDir), ["relay.db"], "no -wal or -shm made to read it");
    });

    it("WARN (exit 0) naming pending migrations, and applies none", async () => {
      const dataDir = dataDirCopy();
      sql(dataDir, "DELETE FROM relay_migrations WHERE tag = (SELECT max(tag) FROM relay_migrations)");
      const before = snapshot(dataDir);
      const run = await check({ dataDir });
      assert.equal(run.code, 0, run.lines.join("\n"));
      assert.match(
        run.line("database"),
        /^WARN database .*: 1 migrations pending \(\d{4}_\w+\); serve applies them at start; fix: run relay migrate/,
      );
      assert.deepEqual(snapshot(dataDir), before);
    });
  });

  it("--json gives the same results as data", async () => {
    const run = await check({ env: { RELAY_SOURCE_IP: "192.0.2.77" } });
    const json = await runRelay(["check", "--json"], {
      env: { RELAY_SOURCE_IP: "192.0.2.77", RELAY_DNS_SERVERS: `${dns.host}:${dns.port}` },
    });
    assert.equal(json.code, 1);
    const results = JSON.parse(json.stdout) as { status: string; what: string; detail: string; fix?: string }[];
    const source = results.find((r) => r.what === "RELAY_SOURCE_IP 192.0.2.77");
    assert.equal(source?.status, "fail");
    assert.equal(`FAIL ${source.what}: ${source.detail}; fix: ${source.fix}`, run.line("RELAY_SOURCE_IP"));
  });

  it("--help describes it", async () => {
    const run = await runRelay(["check", "--help"]);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: relay check \[--json\]/);
  });
});

describe("relay check: the fleet's shared server", { skip: sqldMissing }, () => {
  let sqld: Sqld;
  before(async () => {
    sqld = await startSqld({ jwt: true });
  });
  after(async () => {
    await sqld?.close();
  });

  it("passes a server that answers and takes the token, fails a refused token and a server that is away", async () => {
    const good = await check({ env: { RELAY_SHARED_DB_URL: sqld.url, RELAY_SHARED_DB_TOKEN: sqld.token() } });
    assert.match(good.line("RELAY_SHARED_DB_URL"), /^PASS .*: answers, the token is accepted, \d+ migrations pending/);

    const foreign = signJwt(generateKeyPairSync("ed25519").privateKey);
    const refused = await check({ env: { RELAY_SHARED_DB_URL: sqld.url, RELAY_SHARED_DB_TOKEN: foreign } });
    assert.equal(refused.code, 1);
    assert.match(refused.line("RELAY_SHARED_DB_URL"), /^FAIL .*: the server refused RELAY_SHARED_DB_TOKEN .*401/);

    await sqld.stop();
    try {
      const away = await check({ env: { RELAY_SHARED_DB_URL: sqld.url, RELAY_SHARED_DB_TOKEN: sqld.token() } });
      assert.equal(away.code, 1);
      assert.match(away.line("RELAY_SHARED_DB_URL"), /^FAIL .*: cannot reach it /);
    } finally {
      await sqld.start();
    }
  });
});

/**
 * Change the database as another relay would have, with the relay closed;
 * then leave it whole in its one file, as SQLite leaves it when the last
 * connection closes cleanly (no -wal, no -shm).
 */
function sql(dataDir: string, statement: string): void {
  const database = new Database(join(dataDir, "relay.db"));
  database.exec(statement);
  database.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  database.close();
  for (const suffix of ["-wal", "-shm"]) rmSync(join(dataDir, `relay.db${suffix}`), { force: true });
}
