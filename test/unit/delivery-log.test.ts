import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { batchLogger, type LogFormat, prettyLine } from "../../src/core/log.ts";
import { deliveryLog } from "../../src/events/delivery-log.ts";
import type { EventRecord } from "../../src/queue/event-log.ts";

const delivered: EventRecord = {
  id: 7,
  at: 1_700_000_000_000,
  type: "delivered",
  messageId: "0190aa",
  recipient: "rcpt@example.com",
  data: {
    reply: "250 2.0.0 queued as 42",
    category: "delivered",
    attempt: 1,
    mx: "mx.example.com",
    mx_ip: "192.0.2.25",
    source_ip: "198.51.100.7",
    duration_ms: 41,
    delay_ms: 1520,
    destination: "mx.example.com~3fa9c012",
    tls: { version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" },
    tags: ["welcome", "eu"],
    metadata: { user: 9 },
    priority: "transactional",
  },
};

function linesOf(events: EventRecord[], format: LogFormat): string[] {
  const writes: string[] = [];
  deliveryLog(batchLogger("info", format, (text) => writes.push(text)))(events);
  assert.ok(writes.length <= 1, "a page is one write");
  return writes.flatMap((text) => text.split("\n"));
}

describe("delivery log", () => {
  it("writes one info line per event with the attempt's facts, in JSON", () => {
    const [line, ...rest] = linesOf([delivered], "json");
    assert.equal(rest.length, 0);
    const { time, ...fields } = JSON.parse(line!);
    assert.match(time, /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(fields, {
      level: "info",
      message: "delivered",
      message_id: "0190aa",
      recipient: "rcpt@example.com",
      destination: "mx.example.com~3fa9c012",
      mx: "mx.example.com",
      mx_ip: "192.0.2.25",
      source_ip: "198.51.100.7",
      attempt: 1,
      delay_ms: 1520,
      duration_ms: 41,
      reply: "250 2.0.0 queued as 42",
      category: "delivered",
      tls: "TLSv1.3",
      tags: "welcome,eu",
    });
  });

  it("writes pretty lines a person can read: logfmt, quoting values with spaces only", () => {
    const line = linesOf([delivered], "pretty")[0]!;
    assert.match(
      line,
      /^\S+Z INFO {2}delivered message_id=0190aa recipient=rcpt@example\.com destination=mx\.example\.com~3fa9c012 mx=mx\.example\.com mx_ip=192\.0\.2\.25 source_ip=198\.51\.100\.7 attempt=1 delay_ms=1520 duration_ms=41 reply="250 2\.0\.0 queued as 42" category=delivered tls=TLSv1\.3 tags=welcome,eu$/,
    );
  });

  it("has a line for received, deferred, bounced, expired, suppressed and dsn_sent, and none for destination events", () => {
    const base = { at: 0, messageId: "m1", recipient: "a@b.test" };
    const events: EventRecord[] = [
      {
        ...base,
        id: 1,
        type: "received",
        data: { mail_from: "s@own.test", source: "smtp", client_ip: "203.0.113.9", size: 812 },
      },
      {
        ...base,
        id: 2,
        type: "deferred",
        data: { reply: "451 4.3.0 try later", attempt: 1, next_attempt_at: "2026-01-01T00:05:00.000Z" },
      },
      { ...base, id: 3, type: "bounced", data: { reply: "550 5.1.1 no such user", bounce_type: "hard" } },
      { ...base, id: 4, type: "expired", data: { reply: "451 4.4.7 expired", bounce_type: "soft" } },
      { ...base, id: 5, type: "suppressed", data: { reason: "hard-bounce", scope: "global" } },
      { ...base, id: 6, type: "dsn_sent", data: { kind: "failure", dsn_message_id: "m2", to: "s@own.test" } },
      { id: 7, at: 0, type: "destination_throttled", messageId: null, recipient: null, data: { destination: "x" } },
    ];
    const lines = linesOf(events, "json").map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.message),
      ["received", "deferred", "bounced", "expired", "suppressed", "dsn_sent"],
    );
    assert.equal(lines[0].client_ip, "203.0.113.9");
    assert.equal(lines[0].mail_from, "s@own.test");
    assert.equal(lines[1].next_attempt_at, "2026-01-01T00:05:00.000Z");
    assert.equal(lines[2].bounce_type, "hard");
    assert.equal(lines[4].reason, "hard-bounce");
    assert.deepEqual(
      [lines[5].recipient, lines[5].sender, lines[5].dsn_message_id, lines[5].kind],
      ["a@b.test", "s@own.test", "m2", "failure"],
    );
  });

  it("has a line for a content scanner's refusal and quarantine", () => {
    const base = { at: 0, messageId: "m3", recipient: "c@d.test" };
    const lines = linesOf([
      {
        ...base,
        id: 1,
        type: "rejected",
        data: {
          mail_from: "s@own.test",
          source: "http",
          action: "refused",
          reply: "554 5.7.1 Gtube pattern",
          milter: "inet:127.0.0.1:11332",
          scan: [{ verdict: "replycode" }],
        },
      },
      { ...base, id: 2, type: "held", data: { reason: "quarantine", milter: "unix:/run/m", quarantine: "odd" } },
    ], "pretty");
    assert.deepEqual(lines.map((line) => line.replace(/^\S+ /, "")), [
      'INFO  rejected message_id=m3 recipient=c@d.test mail_from=s@own.test source=http action=refused reply="554 5.7.1 Gtube pattern" milter=inet:127.0.0.1:11332',
      "INFO  held message_id=m3 recipient=c@d.test reason=quarantine milter=unix:/run/m quarantine=odd",
    ]);
  });

  it("logs nothing below its level", () => {
    const writes: string[] = [];
    deliveryLog(batchLogger("warn", "json", (text) => writes.push(text)))([delivered]);
    assert.deepEqual(writes, [], "nothing is written");
  });
});

describe("pretty lines", () => {
  it("quote empty values, quotes and equals signs, and leave out absent fields", () => {
    assert.equal(
      prettyLine("T", "warn", "m", { a: "", b: 'x"y', c: "k=v", d: undefined, e: null, f: 3, g: { h: 1 } }),
      'T WARN  m a="" b="x\\"y" c="k=v" e=null f=3 g={"h":1}',
    );
  });
});
