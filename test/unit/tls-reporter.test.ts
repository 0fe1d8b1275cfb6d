// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reportPolicyOf } from "../../src/delivery/tls-report/policy.ts";
import { TlsReporter } from "../../src/delivery/tls-report/reporter.ts";
import type { TlsSession } from "../../src/delivery/tls-report/session.ts";
import { TlsTally } from "../../src/delivery/tls-report/tally.ts";
import type { DnsResult } from "../../src/dns/types.ts";
import { TlsReportStore } from "../../src/queue/tls-reports.ts";
import { readReportMail } from "../helpers/tls-report-mail.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-tlsrpt-");

/** The report job (RFC 8460 4, 5) over a real database, with a fake clock, resolver and transports. */

const HOUR = 3_600_000;
const TICK_MS = 60_000;
const DAY = 24 * HOUR;
const DAY1_NOON = Date.UTC(2026, 2, 14, 12);
const DAY2 = Date.UTC(2026, 2, 15);
const enforce = reportPolicyOf({
  mode: "enforce",
  id: "1",
  policy: { version: "STSv1", mode: "enforce", mx: ["mx.good.test", "mx.bad.test"], maxAge: 86400 },
});
const ok: TlsSession = { mxHost: "mx.good.test", receivingIp: "192.0.2.1", sendingIp: "198.51.100.7" };
const hostMismatch: TlsSession = {
  ...ok,
  mxHost: "mx.bad.test",
  failure: { resultType: "certificate-host-mismatch", reasonCode: "ERR_TLS_CERT_ALTNAME_INVALID" },
};

async function world() {
  const { database } = await temporaryDatabase(DAY1_NOON);
  const clock = new FakeClock(DAY1_NOON);
  const store = new TlsReportStore(database);
  const tally = new TlsTally(clock, DAY);
  const txt = new Map<string, DnsResult<string[]>>([
    ["_smtp._tls.strict.test", { ok: true, answers: ["v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"], ttl: 300 }],
    ["_smtp._tls.posted.test", { ok: true, answers: ["v=TLSRPTv1; rua=https://reports.test/v1/tlsrpt"], ttl: 300 }],
  ]);
  const mails: { from: string; to: string; body: Uint8Array }[] = [];
  const posts: { url: string; body: Uint8Array; contentType: string }[] = [];
  const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const lookups: string[] = [];
  let postStatus = 200;
  /** When set, an upload waits until its signal aborts (a slow endpoint). */
  let hang = false;
  const reporter = () =>
    new TlsReporter({
      store,
      tally,
      clock,
      resolver: {
        txt: async (name) => {
          lookups.push(name);
          return txt.get(name) ?? { ok: false, error: "NXDOMAIN" };
        },
      },
      hostname: "relay.test",
      organizationName: "Relay Test",
      contactInfo: "postmaster@relay.test",
      periodMs: DAY,
      tickMs: TICK_MS,
      keepReportsMs: 30 * DAY,
      sendMail: async (mail) => void mails.push(mail),
      post: async (url, body, contentType, signal) => {
        posts.push({ url, body, contentType });
        if (hang) {
          await new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted"))));
        }
        return postStatus;
      },
      log: (level, message, fields) => logs.push({ level, message, fields }),
    });
  const rows = async (table: string) => (await database.client.execute(`SELECT * FROM ${table}`)).rows;
  return {
    clock,
    store,
    tally,
    txt,
    mails,
    posts,
    logs,
    lookups,
    reporter,
    rows,
    setPostStatus: (status: number) => {
      postStatus = status;
    },
    hangPosts: () => {
      hang = true;
    },
  };
}

/**
 * Runs the job just after a period ending at `end` (it makes the reports),
 * then once more after the spread (RFC 8460 4.1: an hour at most), when they are due.
 */
async function afterPeriod(w: { clock: FakeClock }, job: TlsReporter, end: number): Promise<void> {
  w.clock.set(Math.max(w.clock.now(), end + 1000));
  await job.run();
  await w.clock.advance(HOUR);
  await job.run();
}

describe("the TLS report job", () => {
  it("reports a period once it has ended: one report per domain that asks for one, to each destination, never twice", async () => {
    const w = await world();
    const job = w.reporter();
    w.tally.add("strict.test", enforce, [hostMismatch, ok]);
    w.tally.add("strict.test", enforce, [ok]);
    w.tally.add("posted.test", reportPolicyOf({ mode: "none" }), [ok]);
    w.tally.add("silent.test", reportPolicyOf({ mode: "none" }), [ok]);
    await job.run();
    assert.equal(w.mails.length + w.posts.length, 0, "the day is not over");
    assert.equal(
      (await w.rows("tls_report_counts")).length,
      4,
      "but the counts are written (strict.test: successes and failures)",
    );
    assert.equal(w.tally.size, 0);

    await afterPeriod(w, job, DAY2);
    assert.deepEqual(w.lookups.sort(), ["_smtp._tls.posted.test", "_smtp._tls.silent.test", "_smtp._tls.strict.test"]);
    assert.equal(w.mails.length, 1);
    assert.equal(w.posts.length, 1);
    assert.equal(
      (await w.rows("tls_report_counts")).length,
      0,
      "counts become reports, or are dropped for a domain without a record",
    );

    const mail = w.mails[0]!;
    assert.equal(mail.to, "tlsrpt@reports.test");
    assert.equal(mail.from, "tlsrpt-noreply@relay.test");
    const parsed = readReportMail(mail.body);
    const report = parsed.report;
    assert.equal(parsed.type, "multipart/report");
    assert.equal(parsed.reportType, "tlsrpt");
    assert.deepEqual(parsed.defects, []);
    assert.deepEqual(parsed.parts.map((p) => p.type), ["text/plain", "application/tlsrpt+gzip"]);
    assert.equal(parsed.filename, "relay.test!strict.test!1773446400!1773532800.json.gz");
    assert.equal(parsed.header("TLS-Report-Domain"), "strict.test");
    assert.equal(parsed.header("TLS-Report-Submitter"), "relay.test");
    assert.match(parsed.header("From") ?? "", /@relay\.test>?$/);
    assert.equal(
      parsed.header("Subject"),
      `Report Domain: strict.test Submitter: relay.test Report-ID: <${report["report-id"]}>`,
    );
    assert.equal(parsed.header("TLS-Required"), "No");
    const head = Buffer.from(mail.body).toString("latin1").split("\r\n\r\n")[0]!;
    assert.match(head, /^TLS-Report-Domain: strict\.test$/m, "spelled as RFC 8460 5.3 does");
    assert.match(head, /^TLS-Report-Submitter: relay\.test$/m);
    assert.match(head, /^TLS-Required: No$/m);
    assert.match(report["report-id"], /^[0-9A-Z]{26}@relay\.test$/);
    assert.deepEqual(report["date-range"], {
      "start-datetime": "2026-03-14T00:00:00Z",
      "end-datetime": "2026-03-15T00:00:00Z",
    });
    assert.equal(report["organization-name"], "Relay Test");
    assert.equal(report["contact-info"], "postmaster@relay.test");
    assert.deepEqual(report.policies[0].summary, {
      "total-successful-session-count": 2,
      "total-failure-session-count": 1,
    });
    assert.deepEqual(
      report.policies[0]["failure-details"].map((
        d: any,
      ) => [d["result-type"], d["receiving-mx-hostname"], d["failed-session-count"]]),
      [
        ["certificate-host-mismatch", "mx.bad.test", 1],
      ],
    );

    const post = w.posts[0]!;
    assert.equal(post.url, "https://reports.test/v1/tlsrpt");
    assert.equal(post.contentType, "application/tlsrpt+gzip");
    const { gunzipSync } = await import("node:zlib");
    const posted = JSON.parse(gunzipSync(post.body).toString("utf8"));
    assert.deepEqual(posted.policies, [
      {
        policy: { "policy-type": "no-policy-found", "policy-domain": "posted.test" },
        summary: { "total-successful-session-count": 1, "total-failure-session-count": 0 },
      },
    ]);
    assert.deepEqual(
      w.logs.filter((l) => l.message === "TLS report sent").map((
        l,
      ) => [l.fields?.domain, l.fields?.successful_sessions, l.fields?.failed_sessions]).sort(),
      [["posted.test", 1, 0], ["strict.test", 2, 1]],
    );

    await job.run();
    await w.clock.advance(DAY);
    await job.run();
    await w.reporter().run(); // a restart: the same database, a new job
    assert.equal(w.mails.length, 1, "sent once");
    assert.equal(w.posts.length, 1, "posted once");
    assert.deepEqual((await w.rows("tls_reports")).map((r) => [r.policy_domain, r.state]).sort(), [[
      "posted.test",
      "sent",
    ], ["strict.test", "sent"]]);

    w.clock.set(DAY2 + 31 * DAY);
    await job.run();
    assert.deepEqual(await w.rows("tls_reports"), [], "reports done with are deleted after the retention");
  });

  it("a later period is a report of its own, with only its own sessions", async () => {
    const w = await world();
    const job = w.reporter();
    w.tally.add("strict.test", enforce, [ok]);
    w.clock.set(DAY2 + 2 * HOUR);
    w.tally.add("strict.test", enforce, [hostMismatch, ok]);
    await afterPeriod(w, job, DAY2);
    await afterPeriod(w, job, DAY2 + DAY);
    const reports = w.mails.map((m) => readReportMail(m.body).report);
    assert.deepEqual(
      reports.map((
        r,
      ) => [
        r["date-range"]["start-datetime"],
        r.policies[0].summary["total-successful-session-count"],
        r.policies[0].summary["total-failure-session-count"],
      ]),
      [["2026-03-14T00:00:00Z", 1, 0], ["2026-03-15T00:00:00Z", 1, 1]],
    );
    assert.notEqual(reports[0]["report-id"], reports[1]["report-id"]);
  });

  it("a failed delivery is retried with exponential backoff, for 24 hours after the report was made (RFC 8460 5.5)", async () => {
    const w = await world();
    const job = w.reporter();
    w.setPostStatus(503);
    w.tally.add("posted.test", reportPolicyOf({ mode: "none" }), [ok]);
    await afterPeriod(w, job, DAY2);
    assert.equal(w.posts.length, 1);
    await job.run();
    assert.equal(w.posts.length, 1, "not again before the backoff");
    const gaps: number[] = [];
    let last = w.clock.now();
    for (let minutes = 0; minutes < 48 * 60; minutes++) {
      await w.clock.advance(60_000);
      const before = w.posts.length;
      await job.run();
      if (w.posts.length > before) {
        gaps.push(Math.round((w.clock.now() - last) / 60_000));
        last = w.clock.now();
      }
    }
    assert.deepEqual(gaps, [5, 10, 20, 40, 80, 160, 320, 640]);
    const [row] = await w.rows("tls_reports");
    assert.equal(row?.state, "failed");
    assert.match(String(row?.last_error), /HTTP 503/);
    assert.ok(w.logs.some((l) => l.message.startsWith("TLS report not delivered; given up")));
  });

  it("a TLSRPT record that cannot be looked up now is looked up again; a period is not lost for it", async () => {
    const w = await world();
    const job = w.reporter();
    w.txt.set("_smtp._tls.strict.test", { ok: false, error: "SERVFAIL" });
    w.tally.add("strict.test", enforce, [ok]);
    await afterPeriod(w, job, DAY2);
    assert.equal(w.mails.length, 0);
    assert.equal((await w.rows("tls_report_counts")).length, 1, "kept");
    w.txt.set("_smtp._tls.strict.test", {
      ok: true,
      answers: ["v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"],
      ttl: 300,
    });
    await afterPeriod(w, job, DAY2);
    assert.equal(w.mails.length, 1);
  });

  it("stop does not wait for a slow endpoint: the upload is aborted and stays due for the next start", async () => {
    const w = await world();
    w.hangPosts();
    w.tally.add("posted.test", reportPolicyOf({ mode: "none" }), [ok]);
    w.clock.set(DAY2 + 1000);
    await w.reporter().run(); // makes the report
    await w.clock.advance(HOUR);
    const job = w.reporter();
    job.start();
    await w.clock.advance(0);
    await waitUntil(() => w.posts.length, (n) => n > 0, { what: "an upload" });
    await job.stop();
    const [row] = await w.rows("tls_reports");
    assert.deepEqual([row?.state, row?.attempts], ["pending", 0]);
  });

  it("start() runs the job at once, then once every tick", async () => {
    const w = await world();
    const job = w.reporter();
    const sessions = async () => (await w.rows("tls_report_counts")).map((r) => Number(r.sessions));
    w.tally.add("strict.test", enforce, [ok]);
    job.start();
    await w.clock.advance(0);
    await w.clock.timerSet(TICK_MS);
    assert.deepEqual(await sessions(), [1], "the first run wrote the counts");
    w.tally.add("strict.test", enforce, [ok]);
    await w.clock.advance(TICK_MS - 1);
    assert.deepEqual(await sessions(), [1], "not before the tick");
    await w.clock.advance(1);
    await w.clock.timerSet(TICK_MS);
    assert.deepEqual(await sessions(), [2]);
    await job.stop();
  });

  it("stop writes the counts not yet written", async () => {
    const w = await world();
    const job = w.reporter();
    job.start();
    await job.stop();
    w.tally.add("strict.test", enforce, [ok]);
    await job.stop();
    assert.deepEqual((await w.rows("tls_report_counts")).map((r) => [r.policy_domain, r.sessions]), [[
      "strict.test",
      1,
    ]]);
  });
});
