// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * GET /metrics on the real relay, read by an independent parser
 * (prom2javascript): after mail that is delivered, deferred and bounced, its
 * event counters equal the event log's counts by type, provider and
 * category; the queue depth equals GET /v1/queue's; the histograms, the
 * connections in and out, the commits, memory and event-loop lag moved. A
 * scraper needs a bearer token with the read scope.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseMetrics, sampleOf, seriesOf, sumOf } from "../helpers/metrics.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

/** The scripted destination's MX host is a provider's here, so that the provider label is seen to work. */
const SHAPING = `providers:
  scripted:
    mx_suffixes: [dest.test]
`;

/** The provider each recipient domain's MX (mx.dest.test or mx.elsewhere.test) makes it under SHAPING. */
const PROVIDER_OF: Record<string, string> = {
  "dest.test": "scripted",
  "sender.test": "scripted",
  "elsewhere.test": "other",
};

/** The label set relay_events_total gives an event of GET /v1/events. */
function labelsOf(event: any): string {
  const domain = event.recipient?.split("@").pop()?.toLowerCase();
  const provider = domain === undefined ? event.provider ?? "other" : PROVIDER_OF[domain] ?? `unexpected ${domain}`;
  return `${event.type}|${provider}|${event.category ?? "none"}`;
}

describe("GET /metrics", () => {
  let world: World;
  const dir = mkdtempSync(join(tmpdir(), "relay-metrics-"));

  before(async () => {
    const shapingFile = join(dir, "shaping.yaml");
    writeFileSync(shapingFile, SHAPING);
    world = await startWorld({
      zone: {
        ...defaultZone(),
        "elsewhere.test": { MX: [{ preference: 10, exchange: "mx.elsewhere.test" }] },
        "mx.elsewhere.test": { A: ["127.0.0.1"] },
      },
      // A deferred recipient waits an hour: it stays deferred, and writes no new event while the test looks.
      env: { RELAY_SHAPING_FILE: shapingFile, RELAY_RETRY_SCHEDULE: "1h" },
    });
  });
  after(async () => {
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const scrape = async (token = world.relay.adminToken) => {
    const response = await fetch(world.relay.url("/metrics"), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    return await parseMetrics(await response.text());
  };

  it("counts the events as the event log has them, and shows the queue, connections and timings", {
    timeout: 60_000,
  }, async () => {
    // Right after the start, over SMTP: delivered, deferred (451 at RCPT) and bounced (550 5.1.1), one message each.
    for (const to of ["ok@dest.test", "tempfail@dest.test", "permfail@dest.test"]) {
      const replies = await sendMail(world.relay.smtpPort, "a@sender.test", [to], `Subject: to ${to}\r\n\r\nhi\r\n`);
      assert.match(replies.at(-2)!, /^250 /);
    }
    // Over HTTP, to a domain whose MX no provider of the rules runs.
    const sent = await world.api("POST", "/v1/messages", {
      from: "a@sender.test",
      to: ["someone@elsewhere.test"],
      subject: "elsewhere",
      text: "hi",
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    for (
      const [type, recipient] of [
        ["delivered", "ok@dest.test"],
        ["deferred", "tempfail@dest.test"],
        ["bounced", "permfail@dest.test"],
        ["delivered", "someone@elsewhere.test"],
        // The bounce's DSN to the sender, delivered too.
        ["delivered", "a@sender.test"],
      ]
    ) {
      await world.waitForEvent((e) => e.type === type && e.recipient === recipient, 30_000);
    }

    // The counters follow the log within a feed's run: look until both agree.
    const { events, metrics } = await waitUntil(
      async () => ({ events: await world.events(), metrics: await scrape() }),
      ({ events, metrics }) => {
        const counted = seriesOf(metrics, "relay_events_total");
        return counted.reduce((n, s) => n + s.value!, 0) === events.length;
      },
      { what: "relay_events_total to count every event of the log", timeout: 20_000, every: 100 },
    );
    const expected = new Map<string, number>();
    for (const event of events) expected.set(labelsOf(event), (expected.get(labelsOf(event)) ?? 0) + 1);
    const counted = new Map(
      seriesOf(metrics, "relay_events_total").map((s) => [
        `${s.labels.type}|${s.labels.provider}|${s.labels.category}`,
        s.value,
      ]),
    );
    assert.deepEqual(Object.fromEntries(counted), Object.fromEntries(expected));
    assert.ok(expected.get("bounced|scripted|bad-mailbox")! >= 1, JSON.stringify([...expected]));
    assert.ok(expected.get("deferred|scripted|bad-mailbox") === undefined);
    assert.ok(expected.get("received|other|none")! >= 1, "elsewhere.test is no provider's");

    // Time in queue: one observation per delivered and bounced recipient.
    const delivered = events.filter((e) => e.type === "delivered").length;
    assert.equal(sampleOf(metrics, "relay_time_in_queue_seconds", { outcome: "delivered" })?.count, delivered);
    assert.equal(sampleOf(metrics, "relay_time_in_queue_seconds", { outcome: "bounced" })?.count, 1);

    // Attempts timed at each provider; connections out as many as the destination saw, none open for long.
    assert.ok(sampleOf(metrics, "relay_attempt_duration_seconds", { provider: "scripted" })!.count! >= 3);
    assert.ok(sampleOf(metrics, "relay_attempt_duration_seconds", { provider: "other" })!.count! >= 1);
    assert.equal(
      sumOf(metrics, "relay_outbound_connections_total", { result: "opened" }),
      world.destination.connections,
    );
    assert.ok(sumOf(metrics, "relay_outbound_connections_total", { provider: "scripted", result: "opened" }) >= 1);
    assert.ok(seriesOf(metrics, "relay_outbound_connections_open").length >= 1);

    // Connections in: the three SMTP sessions, closed by now.
    assert.equal(sampleOf(metrics, "relay_smtp_connections_total", { listener: "smtp" })?.value, 3);
    assert.equal(sampleOf(metrics, "relay_smtp_connections_open", { listener: "smtp" })?.value, 0);
    assert.equal(sampleOf(metrics, "relay_smtp_connections_refused_total", { listener: "smtp" })?.value, 0);

    // Group commits: acceptances (4 messages, the DSN too) and delivery outcomes.
    const enqueued = sampleOf(metrics, "relay_group_commit_batch_size", { commit: "enqueue" })!;
    assert.ok(enqueued.count! >= 1 && enqueued.sum! >= 4, JSON.stringify(enqueued));
    assert.ok(sampleOf(metrics, "relay_group_commit_seconds", { commit: "outcomes" })!.count! >= 1);

    // The process.
    assert.ok(sampleOf(metrics, "relay_process_resident_memory_bytes")!.value! > 0);
    assert.ok(sampleOf(metrics, "relay_process_heap_used_bytes")!.value! > 0);
    assert.ok(sampleOf(metrics, "relay_event_loop_lag_seconds")!.count! >= 1);
  });

  it("shows the queue's depth as GET /v1/queue does", { timeout: 60_000 }, async () => {
    const queueByDomain = async () => {
      const summary = await world.api("GET", "/v1/queue");
      const byDomain = new Map<string, { queued: number; deferred: number }>();
      for (const d of [...summary.json.destinations.flatMap((d: any) => d.domains), ...summary.json.domains]) {
        byDomain.set(d.domain, { queued: d.queued, deferred: d.deferred });
      }
      return byDomain;
    };
    // The depth is counted at most every few seconds: look until the count taken after the deferral is shown.
    const metrics = await waitUntil(
      scrape,
      (m) => sampleOf(m, "relay_queue_depth", { state: "deferred", domain: "dest.test" })?.value === 1,
      { what: "the deferred recipient in relay_queue_depth", timeout: 20_000, every: 250 },
    );
    const queue = await queueByDomain();
    assert.deepEqual(queue.get("dest.test"), { queued: 0, deferred: 1 });
    assert.equal(sampleOf(metrics, "relay_queue_depth", { state: "queued", domain: "dest.test" })?.value, 0);
    const total = (state: "queued" | "deferred") => [...queue.values()].reduce((n, d) => n + d[state], 0);
    assert.equal(sampleOf(metrics, "relay_queue_recipients", { state: "deferred" })?.value, total("deferred"));
    assert.equal(sampleOf(metrics, "relay_queue_recipients", { state: "queued" })?.value, total("queued"));
  });

  it("needs a bearer token with the read scope", async () => {
    const anonymous = await fetch(world.relay.url("/metrics"));
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Bearer/);
    const key = async (scope: string) => {
      const created = await runRelay(["keys", "create", "--scope", scope, "--json"], { dataDir: world.relay.dataDir });
      assert.equal(created.code, 0, created.stderr);
      return JSON.parse(created.stdout).token as string;
    };
    const sender = await fetch(world.relay.url("/metrics"), {
      headers: { authorization: `Bearer ${await key("send")}` },
    });
    assert.equal(sender.status, 403);
    const metrics = await scrape(await key("read"));
    assert.ok(metrics["relay_events_total"], "a reader scrapes");
  });
});
