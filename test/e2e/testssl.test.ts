import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { freePort, type RelayProcess, startRelay, testBinary } from "../helpers/relay-process.ts";
import { testssl, type TestsslFinding, testsslMissing, type TestsslScan } from "../helpers/testssl.ts";

/**
 * testssl.sh audits the relay's inbound TLS, on the SMTP port (STARTTLS,
 * RFC 3207) and on the implicit TLS port (RELAY_SMTPS_LISTEN, RFC 8314), as
 * a mail server should configure it (Mozilla's "intermediate" profile,
 * RFC 9325): nothing below TLS 1.2, no weak cipher, forward secrecy
 * everywhere, the server's cipher order, and no known vulnerability.
 * Both scans run at once; each takes a while (testssl is a shell script
 * that opens a few hundred connections).
 */

/** A safety net against a hang, not a threshold. */
const SAFETY = { timeout: 25 * 60_000 };

/**
 * Findings allowed to be worse than OK/INFO, and why. The certificate is
 * not audited (testssl's -S is not run): the relay's own is self-signed when
 * the operator gives none, and an operator's certificate is theirs to judge.
 */
const ALLOWED: Readonly<Record<string, string>> = {
  // WARN: the scanner's own openssl has no GOST engine; says nothing about the server.
  engine_problem: "WARN",
  // DEBUG: on implicit TLS testssl finds no HTTP and says it skips the HTTP checks.
  service: "DEBUG",
};

const GOOD = new Set(["OK", "INFO"]);

/** Every vulnerability check -U runs that applies to SMTP (Ticketbleed and BREACH are HTTP only). */
const VULNERABILITIES = [
  "heartbleed",
  "CCS",
  "ROBOT",
  "secure_renego",
  "secure_client_renego",
  "CRIME_TLS",
  "POODLE_SSL",
  "fallback_SCSV",
  "SWEET32",
  "FREAK",
  "DROWN",
  "LOGJAM",
  "LOGJAM-common_primes",
  "BEAST",
  "LUCKY13",
  "RC4",
];

/** testssl's names for the groups the relay offers: X25519, P-256, P-384. */
const SECURE_CURVES = new Set(["X25519", "prime256v1", "secp384r1"]);

function finding(scan: TestsslScan, id: string): TestsslFinding {
  const found = scan.findings.find((f) => f.id === id);
  assert.ok(found, `testssl reported no "${id}":\n${scan.output}`);
  return found;
}

function judge(scan: TestsslScan): void {
  const show = (f: TestsslFinding) => `${f.id} ${f.severity}: ${f.finding}`;
  for (const id of ["SSLv2", "SSLv3", "TLS1", "TLS1_1"]) {
    assert.match(finding(scan, id).finding, /^not offered/, show(finding(scan, id)));
  }
  for (const id of ["TLS1_2", "TLS1_3"]) assert.match(finding(scan, id).finding, /^offered/, show(finding(scan, id)));

  // AVERAGE: the CBC ciphers testssl calls obsolete.
  for (const category of ["NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"]) {
    const f = finding(scan, `cipherlist_${category}`);
    assert.match(f.finding, /^not offered/, show(f));
  }
  assert.match(finding(scan, "cipherlist_STRONG").finding, /^offered/);

  assert.match(finding(scan, "PFS").finding, /^offered/, show(finding(scan, "PFS")));
  const curves = finding(scan, "PFS_ECDHE_curves").finding.split(" ");
  assert.deepEqual(curves.filter((c) => !SECURE_CURVES.has(c)), [], `curves offered: ${curves.join(" ")}`);

  const order = finding(scan, "cipher_order");
  assert.equal(order.severity, "OK", show(order));
  assert.match(order.finding, /^server/, show(order));

  for (const id of VULNERABILITIES) {
    const f = finding(scan, id);
    assert.ok(GOOD.has(f.severity), show(f));
  }

  const bad = scan.findings.filter((f) => !GOOD.has(f.severity) && ALLOWED[f.id] !== f.severity);
  assert.deepEqual(bad.map(show), [], `findings worse than OK/INFO:\n${scan.output}`);
  finding(scan, "scanTime"); // the scan ran to its end
}

describe("testssl.sh against the relay's inbound TLS", () => {
  let relay: RelayProcess;
  let smtpsPort: number;
  let scans: Promise<[TestsslScan, TestsslScan]>;
  before(async () => {
    if (testsslMissing) return; // every test below is skipped, with the reason
    smtpsPort = await freePort();
    relay = await startRelay({ binary: testBinary, env: { RELAY_SMTPS_LISTEN: `127.0.0.1:${smtpsPort}` } });
    scans = Promise.all([testssl(relay.smtpPort, { starttls: true }), testssl(smtpsPort, { starttls: false })]);
  });
  after(async () => {
    await scans?.catch(() => undefined);
    await relay?.cleanup();
  });

  it("finds STARTTLS on the SMTP port as good as TLS gets", { ...SAFETY, skip: testsslMissing }, async () => {
    judge((await scans)[0]);
  });

  it("finds implicit TLS (RELAY_SMTPS_LISTEN) as good as TLS gets", { ...SAFETY, skip: testsslMissing }, async () => {
    judge((await scans)[1]);
  });
});
