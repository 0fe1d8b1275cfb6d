// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import { gunzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { type DnsServer, startDnsServer, type Zone, type ZoneEntry } from "../fixtures/dns-server.ts";
import { type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { makePki, type PolicyServer, policyText, startPolicyServer, type TestPki } from "../helpers/pki.ts";
import { type RelayProcess, startRelay } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { readReportMail } from "../helpers/tls-report-mail.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { type RelayApi, relayApi } from "../helpers/world.ts";

/**
 * SMTP TLS reporting (RFC 8460), sending side, end to end. The DNS fixture
 * publishes, besides MX and MTA-STS records:
 *
 * - sts.test: an MTA-STS enforce policy listing mx.bad.test (tried first;
 *   its certificate is for mx.good.test: a host mismatch) and mx.good.test
 *   (verifies); `_smtp._tls` rua=mailto:tlsrpt@reports.test;
 * - https.test: an enforce policy whose one MX verifies; rua=https: a
 *   local HTTPS server (its certificate from the test CA, RELAY_TLS_CA_FILE);
 * - plain.test: no MTA-STS policy; rua=mailto:tlsrpt@reports.test;
 * - reports.test, where report mail goes: it asks for reports about itself
 *   too, which must never come (a report must not beget another).
 *
 * Every MX is the one destination fixture. One message per connection
 * (RELAY_MESSAGES_PER_CONNECTION=1), sent one after another, so the number
 * of sessions is the number of messages. Report periods are 3 s long, so a
 * batch of mail may straddle two periods: counts are summed over every
 * report a domain receives, and must come to exactly what was sent.
 */

/** A safety net against a hang, not a threshold. */
const SAFETY = { timeout: 60_000 };

let pki: TestPki;
let policies: PolicyServer;
let reportServer: { server: Server; port: number; posts: { path: string; contentType: string; json: any }[] };
let dns: DnsServer;
let destination: Destination;
let relay: RelayProcess;
let api: RelayApi;
const relays: RelayProcess[] = [];

function mailDomain(
  name: string,
  mx: readonly string[],
  extra: Record<string, ZoneEntry> = {},
  tlsRpt?: string,
  sts = false,
): Zone {
  return {
    [name]: { MX: mx.map((exchange, i) => ({ preference: 10 * (i + 1), exchange })) },
    ...Object.fromEntries(mx.map((exchange) => [exchange, { A: ["127.0.0.1"] }])),
    ...(sts
      ? { [`_mta-sts.${name}`]: { TXT: ["v=STSv1; id=20260101;"] }, [`mta-sts.${name}`]: { A: ["127.0.0.1"] } }
      : {}),
    ...(tlsRpt ? { [`_smtp._tls.${name}`]: { TXT: [tlsRpt, "v=spf1 -all"] } } : {}),
    ...extra,
  };
}

function relayEnv(): Record<string, string> {
  return {
    RELAY_DNS_SERVERS: `127.0.0.1:${dns.port}`,
    RELAY_MX_PORT: String(destination.port),
    RELAY_RETRY_SCHEDULE: "1s",
    RELAY_TLS_CA_FILE: pki.caFile,
    RELAY_MTA_STS_PORT: String(policies.port),
    RELAY_COMMAND_TIMEOUT: "5s",
    RELAY_CONNECT_TIMEOUT: "5s",
    RELAY_SOURCE_IP: "127.0.0.1",
    RELAY_MESSAGES_PER_CONNECTION: "1",
    RELAY_TLSRPT_INTERVAL: "3s",
    RELAY_TLSRPT_CONTACT: "tls-team@relay.test",
    RELAY_LOG_LEVEL: "info",
  };
}

async function startOurRelay(dataDir?: string): Promise<void> {
  relay = await startRelay({ env: relayEnv(), ...(dataDir ? { dataDir } : {}) });
  relays.push(relay);
  api = relayApi(relay);
}

before(async () => {
  pki = makePki();
  policies = await startPolicyServer(pki.leaf(["mta-sts.sts.test", "mta-sts.https.test"]), {
    "mta-sts.sts.test": policyText("enforce", ["mx.bad.test", "mx.good.test"]),
    "mta-sts.https.test": policyText("enforce", ["mx.good.test"]),
  });
  const posts: { path: string; contentType: string; json: any }[] = [];
  const identity = pki.leaf(["127.0.0.1"]);
  const server = createServer({ cert: identity.cert, key: identity.key }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      posts.push({
        path: request.url ?? "",
        contentType: String(request.headers["content-type"]),
        json: JSON.parse(gunzipSync(Buffer.concat(chunks)).toString("utf8")),
      });
      response.writeHead(201).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  reportServer = { server, port: (server.address() as { port: number }).port, posts };
  destination = await startDestination({ starttls: pki.leaf(["mx.good.test", "mx.reports.test"]) });
  dns = await startDnsServer({
    ...mailDomain("sender.test", ["mx.good.test"]),
    ...mailDomain("sts.test", ["mx.bad.test", "mx.good.test"], {}, "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test", true),
    ...mailDomain(
      "https.test",
      ["mx.good.test"],
      {},
      `v=TLSRPTv1; rua=https://127.0.0.1:${reportServer.port}/v1/tlsrpt`,
      true,
    ),
    ...mailDomain("plain.test", ["mx.good.test"], {}, "v=TLSRPTv1;rua=mailto:tlsrpt@reports.test"),
    ...mailDomain("reports.test", ["mx.reports.test"], {}, "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"),
  });
  await startOurRelay();
});

after(async () => {
  for (const r of relays.reverse()) await r.cleanup();
  await destination?.close();
  await dns?.close();
  await policies?.close();
  await new Promise<void>((resolve) => (reportServer ? reportServer.server.close(() => resolve()) : resolve()));
  pki?.cleanup();
});

/** Submit one message and wait until it is delivered: its connection, and so its TLS sessions, are over. */
async function deliver(to: string): Promise<void> {
  const replies = await sendMail(relay.smtpPort, "a@sender.test", [to], `Subject: to ${to}\r\n\r\nbody\r\n`);
  const id = /queued as (\S+)/.exec(replies.at(-2) ?? "")?.[1];
  assert.ok(id, replies.join("\n"));
  await api.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
}

const parsedMail = new WeakMap<object, any>();

/** Every report received so far, by mail (each message parsed once) or by HTTPS. */
function allReports(): any[] {
  const mailed = destination.messages
    .filter((m) => m.recipients.includes("tlsrpt@reports.test"))
    .map((m) => {
      if (!parsedMail.has(m)) parsedMail.set(m, readReportMail(m.bytes).report);
      return parsedMail.get(m);
    });
  return [...mailed, ...reportServer.posts.map((p) => p.json)];
}

function reportsFor(domain: string): any[] {
  return allReports().filter((r) => r.policies.some((p: any) => p.policy["policy-domain"] === domain));
}

function totals(domain: string): { ok: number; failed: number } {
  const summaries = reportsFor(domain).flatMap((r) => r.policies.map((p: any) => p.summary));
  return {
    ok: summaries.reduce((sum, s) => sum + s["total-successful-session-count"], 0),
    failed: summaries.reduce((sum, s) => sum + s["total-failure-session-count"], 0),
  };
}

async function waitForTotals(domain: string, expected: { ok: number; failed: number }): Promise<void> {
  const got = await waitUntil(() => totals(domain), (got) => got.ok >= expected.ok && got.failed >= expected.failed, {
    what: `reported sessions for ${domain}: ${JSON.stringify(expected)}`,
    every: 50,
  });
  assert.deepEqual(got, expected, `reports for ${domain}`);
}

/** No report twice: every report-id once, and one report per domain and period. */
function assertNoDuplicates(): void {
  const all = allReports();
  const ids = all.map((r) => r["report-id"]);
  assert.equal(new Set(ids).size, ids.length, `report ids: ${ids.join(", ")}`);
  const periods = all.map((r) => `${r.policies[0].policy["policy-domain"]} ${r["date-range"]["start-datetime"]}`);
  assert.equal(new Set(periods).size, periods.length, `periods: ${periods.join(", ")}`);
}

describe("TLS reporting (RFC 8460): aggregate reports of the sessions to each policy domain", () => {
  it(
    "a period's sessions reach each domain's rua: by mail for an MTA-STS domain with a bad MX and one without a policy, by HTTPS POST",
    SAFETY,
    async () => {
      for (const to of ["a@sts.test", "b@sts.test", "a@https.test", "b@https.test", "a@plain.test"]) await deliver(to);

      // sts.test: each connection found mx.bad.test's certificate valid for another name, then delivered at mx.good.test.
      await waitForTotals("sts.test", { ok: 2, failed: 2 });
      const stsReports = reportsFor("sts.test");
      for (const report of stsReports) {
        assert.equal(report["organization-name"], "relay.test");
        assert.equal(report["contact-info"], "tls-team@relay.test");
        assert.equal(report.policies.length, 1);
        const { policy } = report.policies[0];
        assert.deepEqual(policy, {
          "policy-type": "sts",
          "policy-string": ["version: STSv1", "mode: enforce", "mx: mx.bad.test", "mx: mx.good.test", "max_age: 86400"],
          "policy-domain": "sts.test",
          "mx-host": ["mx.bad.test", "mx.good.test"],
        });
      }
      const details = stsReports.flatMap((r) => r.policies[0]["failure-details"] ?? []);
      assert.deepEqual(
        [
          ...new Set(
            details.map((d: any) =>
              JSON.stringify([d["result-type"], d["receiving-mx-hostname"], d["receiving-ip"], d["sending-mta-ip"]])
            ),
          ),
        ],
        [JSON.stringify(["certificate-host-mismatch", "mx.bad.test", "127.0.0.1", "127.0.0.1"])],
      );
      assert.equal(details.reduce((sum: number, d: any) => sum + d["failed-session-count"], 0), 2);

      // The report mail itself (RFC 8460 5.3).
      const mail = destination.messages.find((m) =>
        m.recipients.includes("tlsrpt@reports.test") && /^TLS-Report-Domain: sts\.test\r?$/im.test(m.data)
      );
      assert.ok(mail);
      const parsed = readReportMail(mail.bytes);
      assert.equal(parsed.type, "multipart/report");
      assert.equal(parsed.reportType, "tlsrpt");
      assert.equal(parsed.header("TLS-Report-Submitter"), "relay.test");
      assert.match(parsed.header("From") ?? "", /@relay\.test>?$/);
      const id = parsed.report["report-id"];
      assert.equal(parsed.header("Subject"), `Report Domain: sts.test Submitter: relay.test Report-ID: <${id}>`);
      const range = parsed.report["date-range"];
      const [start, end] = [Date.parse(range["start-datetime"]) / 1000, Date.parse(range["end-datetime"]) / 1000];
      assert.equal(end - start, 3, "RELAY_TLSRPT_INTERVAL");
      assert.equal(parsed.filename, `relay.test!sts.test!${start}!${end}.json.gz`);
      assert.equal(mail.mailFrom, "tlsrpt-noreply@relay.test");

      // https.test: POSTed, gzip-compressed (RFC 8460 5.4), every session verified.
      await waitForTotals("https.test", { ok: 2, failed: 0 });
      assert.ok(
        reportServer.posts.every((p) => p.path === "/v1/tlsrpt" && p.contentType === "application/tlsrpt+gzip"),
      );
      for (const report of reportsFor("https.test")) {
        assert.equal(report.policies[0].policy["policy-type"], "sts");
        assert.deepEqual(report.policies[0].policy["mx-host"], ["mx.good.test"]);
        assert.equal(report.policies[0]["failure-details"], undefined);
      }

      // plain.test: no policy (RFC 8460 4.4 "no-policy-found"), opportunistic TLS succeeded.
      await waitForTotals("plain.test", { ok: 1, failed: 0 });
      for (const report of reportsFor("plain.test")) {
        assert.deepEqual(report.policies[0].policy, {
          "policy-type": "no-policy-found",
          "policy-domain": "plain.test",
        });
      }
      assert.match(relay.stderr, /TLS report sent.*sts\.test|sts\.test.*TLS report sent/);
      assertNoDuplicates();
    },
  );

  it("a later period reports only its own sessions: what was sent is never sent again", SAFETY, async () => {
    await deliver("c@sts.test");
    await waitForTotals("sts.test", { ok: 3, failed: 3 });
    assert.deepEqual(totals("https.test"), { ok: 2, failed: 0 });
    assert.deepEqual(totals("plain.test"), { ok: 1, failed: 0 });
    assertNoDuplicates();
  });

  it("across a restart, nothing already sent is sent again", SAFETY, async () => {
    const dataDir = relay.dataDir;
    assert.equal(await relay.stop(), 0);
    await startOurRelay(dataDir);
    await deliver("b@plain.test");
    await waitForTotals("plain.test", { ok: 2, failed: 0 });
    assert.deepEqual(totals("sts.test"), { ok: 3, failed: 3 });
    assert.deepEqual(totals("https.test"), { ok: 2, failed: 0 });
    assertNoDuplicates();
  });

  it("report mail begets no report: reports.test asks for reports, and none about it comes", SAFETY, async () => {
    const reportMails = destination.messages.filter((m) => m.recipients.includes("tlsrpt@reports.test"));
    assert.ok(reportMails.length >= 3, "report mail went to reports.test in earlier periods");
    assert.deepEqual(reportsFor("reports.test"), []);
    assert.equal(reportMails.some((m) => /^TLS-Report-Domain: reports\.test\r?$/im.test(m.data)), false);
  });
});
