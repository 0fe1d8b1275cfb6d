import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { exportOptions, parseSince } from "../../src/cli/commands/events.ts";
import { UsageError } from "../../src/core/errors.ts";
import { EVENT_CSV_COLUMNS, eventCsvLine } from "../../src/queue/event-csv.ts";
import type { EventRecord } from "../../src/queue/event-log.ts";
import { parseCsvLine } from "../../src/queue/suppression-csv.ts";

const NOW = Date.parse("2026-12-06T12:00:00.000Z");

function record(line: string): Record<string, string> {
  const parsed = parseCsvLine(line);
  assert.ok("fields" in parsed, line);
  assert.equal(parsed.fields.length, EVENT_CSV_COLUMNS.length);
  return Object.fromEntries(EVENT_CSV_COLUMNS.map((c, i) => [c, parsed.fields[i]!]));
}

describe("accounting CSV", () => {
  const bounced: EventRecord = {
    id: 3,
    at: NOW,
    type: "bounced",
    messageId: "01MSG",
    recipient: "gone@dest.test",
    data: {
      reply: "550 5.1.1 no such user, sorry",
      category: "bad-mailbox",
      bounce_type: "hard",
      attempt: 2,
      mx: "mx.dest.test",
      mx_ip: "192.0.2.25",
      source_ip: "198.51.100.7",
      delay_ms: 61_000,
      destination: "mx.dest.test~0a1b2c3d",
      tags: ["welcome", "eu"],
    },
  };
  const facts = {
    createdAt: NOW - 61_000,
    mailFrom: "news@own.test",
    source: "smtp",
    clientIp: "203.0.113.9",
    size: 812,
  };

  it("writes a bounce with the message's facts in PowerMTA's column names", () => {
    assert.deepEqual(record(eventCsvLine(bounced, facts)), {
      type: "bounced",
      timeLogged: "2026-12-06T12:00:00.000Z",
      timeQueued: "2026-12-06T11:58:59.000Z",
      orig: "news@own.test",
      rcpt: "gone@dest.test",
      dsnAction: "failed",
      dsnStatus: "5.1.1",
      dsnDiag: "smtp;550 5.1.1 no such user, sorry",
      dsnMta: "mx.dest.test (192.0.2.25)",
      bounceCat: "bad-mailbox",
      srcType: "smtp",
      srcIp: "203.0.113.9",
      dlvSourceIp: "198.51.100.7",
      dlvDestinationIp: "192.0.2.25",
      dlvSize: "812",
      messageId: "01MSG",
      destination: "mx.dest.test~0a1b2c3d",
      attempt: "2",
      delayMs: "61000",
      tags: "welcome,eu",
    });
  });

  it("a delivery is relayed, a deferral delayed; a reply without an enhanced code gets its class", () => {
    const delivered = record(eventCsvLine({ ...bounced, type: "delivered", data: { reply: "250 ok" } }, facts));
    assert.deepEqual([delivered.dsnAction, delivered.dsnStatus, delivered.dsnDiag], [
      "relayed",
      "2.0.0",
      "smtp;250 ok",
    ]);
    const deferred = record(eventCsvLine({ ...bounced, type: "deferred", data: { reply: "451 4.7.1 later" } }, facts));
    assert.deepEqual([deferred.dsnAction, deferred.dsnStatus], ["delayed", "4.7.1"]);
  });

  it("a message purged since leaves its columns to the event's own data, or empty", () => {
    const received: EventRecord = {
      ...bounced,
      type: "received",
      data: { mail_from: "a@own.test", source: "http", size: 10 },
    };
    const r = record(eventCsvLine(received, undefined));
    assert.deepEqual([r.orig, r.srcType, r.dlvSize, r.timeQueued, r.dsnAction], ["a@own.test", "http", "10", "", ""]);
  });
});

describe("relay events export arguments", () => {
  it("--since takes ISO times and durations back from now", () => {
    assert.equal(parseSince("24h", NOW), NOW - 86_400_000);
    assert.equal(parseSince("2026-12-01T00:00:00Z", NOW), Date.parse("2026-12-01T00:00:00Z"));
    assert.equal(parseSince("2026-12-01", NOW), Date.parse("2026-12-01"));
    assert.equal(parseSince("yesterday", NOW), undefined);
    assert.equal(parseSince("2026-13-45", NOW), undefined);
  });

  it("reads format, times and types into a filter", () => {
    assert.deepEqual(exportOptions(["export"], {}, NOW), { format: "csv", filter: {} });
    assert.deepEqual(
      exportOptions(["export"], {
        format: "jsonl",
        since: "1h",
        until: "2026-12-06T11:30:00Z",
        type: "bounced, expired",
      }, NOW),
      {
        format: "jsonl",
        filter: { since: NOW - 3_600_000, until: Date.parse("2026-12-06T11:30:00Z"), types: ["bounced", "expired"] },
      },
    );
  });

  it("bad usage lists every problem", () => {
    assert.throws(
      () => exportOptions(["export", "extra"], { format: "xml", since: "soon", type: "bounced,nope" }, NOW),
      (error: unknown) => {
        assert.ok(error instanceof UsageError);
        assert.equal(error.problems.length, 4, error.problems.join("\n"));
        return true;
      },
    );
    assert.throws(() => exportOptions(["export"], { since: "1h", until: "2h" }, NOW), /--until must be later/);
    assert.throws(() => exportOptions([], {}, NOW), /missing action/);
  });
});
