import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { StsResult } from "../../src/delivery/mta-sts/index.ts";
import { type ReportPolicy, reportPolicyOf } from "../../src/delivery/tls-report/policy.ts";
import { buildReport, reportFilename, rfc3339 } from "../../src/delivery/tls-report/report.ts";
import { TlsTally } from "../../src/delivery/tls-report/tally.ts";
import type { TlsSession } from "../../src/delivery/tls-report/session.ts";

const DAY = 86_400_000;
/** 2026-03-14T15:09:26Z: mid-day, so that a period is the whole UTC day around it. */
const NOON = Date.UTC(2026, 2, 14, 15, 9, 26);

const clock = {
  t: NOON,
  now() {
    return this.t;
  },
};

const enforce: StsResult = {
  mode: "enforce",
  id: "20260101",
  policy: { version: "STSv1", mode: "enforce", mx: ["mx1.example.test", "*.mx.example.test"], maxAge: 604800 },
};

const ok = (mx: string, ip = "192.0.2.10"): TlsSession => ({ mxHost: mx, receivingIp: ip, sendingIp: "198.51.100.7" });
const bad = (
  mx: string,
  resultType: NonNullable<TlsSession["failure"]>["resultType"],
  reasonCode?: string,
): TlsSession => ({
  mxHost: mx,
  receivingIp: "192.0.2.66",
  sendingIp: "198.51.100.7",
  failure: { resultType, ...(reasonCode ? { reasonCode } : {}) },
});

function report(policyDomain: string, tally: TlsTally) {
  const rows = tally.take().filter((r) => r.policyDomain === policyDomain);
  const first = rows[0]!;
  return buildReport({
    organizationName: "Relay Test Org",
    contactInfo: "postmaster@relay.test",
    reportId: "01ABC@relay.test",
    policyDomain,
    periodStart: first.periodStart,
    periodEnd: first.periodEnd,
    rows,
  });
}

describe("the aggregate report (RFC 8460 4.4)", () => {
  test("an MTA-STS domain: the policy applied, the summary, and failures grouped by result type and hosts", () => {
    const tally = new TlsTally(clock, DAY);
    const policy = reportPolicyOf(enforce);
    // Three connections: two found mx1 with a certificate for another name and went on to mx2.
    tally.add("example.test", policy, [
      bad("mx1.example.test", "certificate-host-mismatch", "ERR_TLS_CERT_ALTNAME_INVALID"),
      ok("a.mx.example.test"),
    ]);
    tally.add("example.test", policy, [
      bad("mx1.example.test", "certificate-host-mismatch", "ERR_TLS_CERT_ALTNAME_INVALID"),
      ok("a.mx.example.test"),
    ]);
    tally.add("example.test", policy, [bad("b.mx.example.test", "starttls-not-supported")]);
    assert.deepEqual(report("example.test", tally), {
      "organization-name": "Relay Test Org",
      "date-range": { "start-datetime": "2026-03-14T00:00:00Z", "end-datetime": "2026-03-15T00:00:00Z" },
      "contact-info": "postmaster@relay.test",
      "report-id": "01ABC@relay.test",
      policies: [
        {
          policy: {
            "policy-type": "sts",
            "policy-string": [
              "version: STSv1",
              "mode: enforce",
              "mx: mx1.example.test",
              "mx: *.mx.example.test",
              "max_age: 604800",
            ],
            "policy-domain": "example.test",
            "mx-host": ["mx1.example.test", "*.mx.example.test"],
          },
          summary: { "total-successful-session-count": 2, "total-failure-session-count": 3 },
          "failure-details": [
            {
              "result-type": "certificate-host-mismatch",
              "sending-mta-ip": "198.51.100.7",
              "receiving-mx-hostname": "mx1.example.test",
              "receiving-ip": "192.0.2.66",
              "failed-session-count": 2,
              "failure-reason-code": "ERR_TLS_CERT_ALTNAME_INVALID",
            },
            {
              "result-type": "starttls-not-supported",
              "sending-mta-ip": "198.51.100.7",
              "receiving-mx-hostname": "b.mx.example.test",
              "receiving-ip": "192.0.2.66",
              "failed-session-count": 1,
            },
          ],
        },
      ],
    });
  });

  test("no policy: policy-type no-policy-found, no policy-string nor mx-host, no failure-details when nothing failed", () => {
    const tally = new TlsTally(clock, DAY);
    const none = reportPolicyOf({ mode: "none" });
    assert.deepEqual(none, { type: "no-policy-found" });
    tally.add("plain.test", none, [ok("mx.plain.test")]);
    tally.add("plain.test", none, [ok("mx.plain.test")]);
    const json = report("plain.test", tally);
    assert.deepEqual(json.policies, [
      {
        policy: { "policy-type": "no-policy-found", "policy-domain": "plain.test" },
        summary: { "total-successful-session-count": 2, "total-failure-session-count": 0 },
      },
    ]);
  });

  test("a policy that could not be fetched (RFC 8460 4.3.2.2): sts, and every session failed with the policy failure", () => {
    const cases: [NonNullable<StsResult["problemKind"]>, string][] = [
      ["fetch-error", "sts-policy-fetch-error"],
      ["invalid", "sts-policy-invalid"],
      ["webpki-invalid", "sts-webpki-invalid"],
    ];
    for (const [problemKind, resultType] of cases) {
      const policy = reportPolicyOf({
        mode: "none",
        problem: "https://mta-sts.broken.test/.well-known/mta-sts.txt: refused",
        problemKind,
      });
      const tally = new TlsTally(clock, DAY);
      tally.add("broken.test", policy, [ok("mx.broken.test", "192.0.2.1")]);
      const [entry] = report("broken.test", tally).policies;
      assert.deepEqual(entry?.policy, { "policy-type": "sts", "policy-domain": "broken.test" });
      assert.deepEqual(entry?.summary, { "total-successful-session-count": 0, "total-failure-session-count": 1 });
      assert.equal(entry?.["failure-details"]?.[0]?.["result-type"], resultType);
      assert.equal(entry?.["failure-details"]?.[0]?.["receiving-mx-hostname"], "mx.broken.test");
      assert.match(entry?.["failure-details"]?.[0]?.["failure-reason-code"] ?? "", /refused/);
    }
    // A domain with no _mta-sts record at all (no problemKind) is no-policy-found, whatever else went wrong.
    assert.deepEqual(reportPolicyOf({ mode: "none", problem: 'no TXT record begins with "v=STSv1;"' }), {
      type: "no-policy-found",
    });
    // A cached policy still applies when a refresh fails (RFC 8461 3.3): it is what is reported.
    assert.equal(reportPolicyOf({ ...enforce, problem: "fetch failed", problemKind: "fetch-error" }).type, "sts");
    assert.ok("policyString" in reportPolicyOf({ ...enforce, problem: "fetch failed", problemKind: "fetch-error" }));
  });

  test("a policy that changed within the period gives two policies entries", () => {
    const tally = new TlsTally(clock, DAY);
    const testing: ReportPolicy = reportPolicyOf(
      { ...enforce, mode: "testing", policy: { ...enforce.policy, mode: "testing" } } as StsResult,
    );
    tally.add("example.test", testing, [ok("mx1.example.test")]);
    tally.add("example.test", reportPolicyOf(enforce), [ok("mx1.example.test")]);
    const json = report("example.test", tally);
    assert.deepEqual(json.policies.map((p) => p.policy["policy-string"]?.[1]), ["mode: testing", "mode: enforce"]);
    assert.deepEqual(json.policies.map((p) => p.summary["total-successful-session-count"]), [1, 1]);
  });

  test("counts fall in whole UTC days (RFC 8460 4.1): a session after midnight belongs to the next period", () => {
    const tally = new TlsTally(clock, DAY);
    const none = reportPolicyOf({ mode: "none" });
    tally.add("plain.test", none, [ok("mx.plain.test")]);
    clock.t = Date.UTC(2026, 2, 15, 0, 0, 0);
    tally.add("plain.test", none, [ok("mx.plain.test")]);
    clock.t = NOON;
    const rows = tally.take();
    assert.deepEqual(rows.map((r) => [rfc3339(r.periodStart), rfc3339(r.periodEnd), r.sessions]), [
      ["2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z", 1],
      ["2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z", 1],
    ]);
    assert.equal(tally.size, 0, "take empties the tally");
    tally.restore(rows);
    tally.restore(rows);
    assert.deepEqual(tally.take().map((r) => r.sessions), [2, 2], "restored rows add up");
  });

  test("the report's file name (RFC 8460 5.1)", () => {
    const start = Date.UTC(2026, 2, 14);
    assert.equal(
      reportFilename("relay.test", "example.test", start, start + DAY),
      "relay.test!example.test!1773446400!1773532800.json.gz",
    );
  });
});
