// deno-lint-ignore-file no-explicit-any -- log lines and JSON answers are checked by assertions, not by types
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseCsvLine } from "../../src/queue/suppression-csv.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { sendMail, SmtpTalk } from "../helpers/smtp-talk.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

/** The relay's JSON log lines so far. */
function jsonLines(world: World): any[] {
  return world.relay.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

/** Wait until a log line matches; the delivery log reads the event log every 250 ms. */
function waitForLine(world: World, predicate: (line: any) => boolean, what: string): Promise<any> {
  return waitUntil(() => Promise.resolve(jsonLines(world).find(predicate)), (line) => line !== undefined, {
    what,
    timeout: 20_000,
    every: 50,
  });
}

const message = (subject: string) => `From: sender@sender.test\nSubject: ${subject}\n\nhello\n`;

describe("delivery log lines, SMTP trace, event filters and export", { timeout: 60_000 }, () => {
  let world: World;
  before(async () => {
    world = await startWorld({ env: { RELAY_LOG_LEVEL: "info", RELAY_SENDER_POLICY: "any" } });
  });
  after(async () => {
    await world?.close();
  });

  it("a delivered, a deferred and a bounced message each log their line with MX IP, source IP, attempt, reply, delay", {
    timeout: 60_000,
  }, async () => {
    for (const to of ["ok@dest.test", "tempfail@dest.test", "permfail@dest.test"]) {
      const replies = await sendMail(world.relay.smtpPort, "sender@sender.test", [to], message(`log ${to}`));
      assert.match(replies.at(-2)!, /^250 /);
    }
    const outcome = (type: string, to: string) =>
      waitForLine(world, (l) => l.message === type && l.recipient === to, `a ${type} line for ${to}`);
    const delivered = await outcome("delivered", "ok@dest.test");
    const deferred = await outcome("deferred", "tempfail@dest.test");
    const bounced = await outcome("bounced", "permfail@dest.test");
    for (const line of [delivered, deferred, bounced]) {
      assert.equal(line.level, "info");
      assert.match(line.message_id, /^[0-9A-Z]{26}$/);
      assert.equal(line.mx, "mx.dest.test");
      assert.equal(line.mx_ip, "127.0.0.1", JSON.stringify(line));
      assert.equal(line.source_ip, "127.0.0.1", JSON.stringify(line));
      assert.equal(line.attempt, 1);
      assert.equal(typeof line.delay_ms, "number");
      assert.ok(line.delay_ms >= 0);
      assert.equal(typeof line.duration_ms, "number");
      assert.match(line.destination, /^mx\.dest\.test~[0-9a-f]{8}$/);
    }
    assert.match(delivered.reply, /^250 /);
    assert.match(deferred.reply, /^451 4\.3\.0 /);
    assert.match(deferred.next_attempt_at, /^\d{4}-/);
    assert.match(bounced.reply, /^550 5\.1\.1 /);
    assert.equal(bounced.bounce_type, "hard");

    const received = await waitForLine(
      world,
      (l) => l.message === "received" && l.recipient === "ok@dest.test",
      "received",
    );
    assert.equal(received.client_ip, "127.0.0.1");
    assert.equal(received.mail_from, "sender@sender.test");
    assert.equal(received.source, "smtp");

    // The bounce owes its sender a DSN (RFC 3461: NOTIFY defaults to FAILURE): its line names the report.
    const dsn = await waitForLine(
      world,
      (l) => l.message === "dsn_sent" && l.recipient === "permfail@dest.test",
      "a dsn_sent line",
    );
    assert.equal(dsn.message_id, bounced.message_id);
    assert.equal(dsn.kind, "failure");
    assert.equal(dsn.sender, "sender@sender.test");
    assert.match(dsn.dsn_message_id, /^[0-9A-Z]{26}$/);
  });

  it("a trace for 127.0.0.1 logs the session's commands and replies without the AUTH secret, and stops when off", {
    timeout: 60_000,
  }, async () => {
    const added = await runRelay(["users", "add", "tracy"], {
      dataDir: world.relay.dataDir,
      input: "a very secret password\n",
    });
    assert.equal(added.code, 0, added.stderr);
    const on = await world.api("POST", "/v1/trace", { client: "127.0.0.1", duration: "5m" });
    assert.equal(on.status, 200, JSON.stringify(on.json));
    assert.equal(on.json.client, "127.0.0.1");
    assert.deepEqual((await world.api("GET", "/v1/trace")).json.traces.map((t: any) => t.client), ["127.0.0.1"]);

    const secret = Buffer.from("\0tracy\0a very secret password").toString("base64");
    const marker = "body-marker-7f3a";
    const session = async (subject: string) => {
      const talk = await SmtpTalk.open(world.relay.smtpPort);
      try {
        await talk.reply();
        await talk.command("EHLO traced.client.test");
        assert.match(await talk.startTls(), /^220 /);
        await talk.command("EHLO traced.client.test");
        assert.match(await talk.command(`AUTH PLAIN ${secret}`), /^235 /);
        await talk.command("MAIL FROM:<sender@sender.test>");
        await talk.command("RCPT TO:<ok@dest.test>");
        await talk.command("DATA");
        assert.match(await talk.command(`Subject: ${subject}\r\n\r\n${marker}\r\n.`), /^250 /);
        await talk.command("QUIT");
      } finally {
        talk.close();
      }
    };
    await session("traced");
    const traced = (l: any) => l.message === "smtp trace" && l.client === "127.0.0.1";
    const quit = await waitForLine(world, (l) => traced(l) && l.line === "QUIT", "the traced QUIT");
    const lines = jsonLines(world).filter((l) => traced(l) && l.session === quit.session);
    const text = lines.map((l) => `${l.dir} ${l.line}`);
    assert.ok(text.includes("in EHLO traced.client.test"), text.join("\n"));
    assert.ok(text.includes("in STARTTLS"), text.join("\n"));
    assert.ok(text.includes("in AUTH PLAIN (initial response not shown)"), text.join("\n"));
    assert.ok(text.includes("in MAIL FROM:<sender@sender.test>"), text.join("\n"));
    assert.ok(text.includes("in RCPT TO:<ok@dest.test>"), text.join("\n"));
    assert.ok(text.some((t) => /^out 220 relay\.test ESMTP/.test(t)), text.join("\n"));
    assert.ok(text.some((t) => /^out 235 /.test(t)), text.join("\n"));
    assert.ok(text.some((t) => /^out 354 /.test(t)), text.join("\n"));
    const stderr = world.relay.stderr;
    assert.ok(!stderr.includes(secret), "the AUTH response is never logged");
    assert.ok(!stderr.includes("a very secret password"));
    assert.ok(!stderr.includes(marker), "message content is never logged");

    // AUTH LOGIN: the user name and the password come as SASL responses, each replaced by a note.
    const login = await SmtpTalk.open(world.relay.smtpPort);
    const password64 = Buffer.from("a very secret password").toString("base64");
    try {
      await login.reply();
      await login.command("EHLO login.client.test");
      await login.startTls();
      await login.command("EHLO login.client.test");
      assert.match(await login.command("AUTH LOGIN"), /^334 /);
      assert.match(await login.command(Buffer.from("tracy").toString("base64")), /^334 /);
      assert.match(await login.command(password64), /^235 /);
      await login.command("QUIT");
    } finally {
      login.close();
    }
    const loginQuit = await waitForLine(
      world,
      (l) => traced(l) && l.line === "QUIT" && l.session !== quit.session,
      "the AUTH LOGIN session's QUIT",
    );
    const loginText = jsonLines(world).filter((l) => traced(l) && l.session === loginQuit.session).map((l) => l.line);
    assert.deepEqual(loginText.filter((l) => l === "(AUTH response not shown)").length, 2, loginText.join("\n"));
    assert.ok(!world.relay.stderr.includes(password64));

    const off = await world.api("DELETE", "/v1/trace?client=127.0.0.1");
    assert.equal(off.status, 204);
    assert.equal((await world.api("DELETE", "/v1/trace?client=127.0.0.1")).status, 404, "it is off already");
    const before = jsonLines(world).filter(traced).length;
    await session("not traced");
    await waitForLine(
      world,
      (l) =>
        l.message === "received" && l.auth_user === "tracy" && l.recipient === "ok@dest.test" &&
        jsonLines(world).filter((x) => x.message === "received" && x.auth_user === "tracy").length === 2,
      "the second session's message",
    );
    assert.equal(jsonLines(world).filter(traced).length, before, "no trace line once it is off");
  });

  it("a trace for a destination logs the relay's outbound session, the message only as its size", {
    timeout: 60_000,
  }, async () => {
    const on = await world.api("POST", "/v1/trace", { destination: "dest.test" });
    assert.equal(on.status, 200, JSON.stringify(on.json));
    assert.match(on.json.destination, /^mx\.dest\.test~/);
    const marker = "outbound-marker-91c2";
    await sendMail(world.relay.smtpPort, "sender@sender.test", ["traced-out@dest.test"], `Subject: x\n\n${marker}\n`);
    const rcpt = await waitForLine(
      world,
      (l) => l.message === "smtp trace" && l.line === "RCPT TO:<traced-out@dest.test>",
      "the outbound RCPT",
    );
    assert.equal(rcpt.dir, "out");
    assert.equal(rcpt.mx_ip, "127.0.0.1");
    const session = jsonLines(world).filter((l) => l.message === "smtp trace" && l.session === rcpt.session);
    // The connection may be one the pool kept from earlier mail: traced from the trace's start, not its own.
    assert.ok(session.some((l) => l.dir === "out" && /^MAIL FROM:<sender@sender\.test>/.test(l.line)));
    assert.ok(session.some((l) => l.dir === "in" && /^250/.test(l.line)));
    await waitForLine(
      world,
      (l) => l.session === rcpt.session && /^\(message data, \d+ octets\)$/.test(l.line),
      "data",
    );
    assert.ok(!world.relay.stderr.includes(marker));
    assert.equal((await world.api("DELETE", `/v1/trace?destination=${on.json.destination}`)).status, 204);
    assert.equal((await world.api("POST", "/v1/trace", { client: "not-an-ip" })).status, 422);
    assert.equal((await world.api("POST", "/v1/trace", { client: "127.0.0.1", destination: "dest.test" })).status, 422);
  });

  it("GET /v1/events filters by type, message, recipient and tag; a domain-limited key sees only its own", {
    timeout: 60_000,
  }, async () => {
    const tagged = await world.api("POST", "/v1/messages", {
      mail_from: "api@sender.test",
      rcpt_to: ["tagged@dest.test"],
      raw: "From: api@sender.test\nSubject: tagged\n\nhi\n",
      tags: ["spring-sale"],
    });
    assert.equal(tagged.status, 202);
    const other = await world.api("POST", "/v1/messages", {
      mail_from: "someone@other.test",
      rcpt_to: ["other@dest.test"],
      raw: "From: someone@other.test\nSubject: other\n\nhi\n",
    });
    assert.equal(other.status, 202);
    await world.waitForEvent((e) => e.type === "delivered" && e.recipient === "tagged@dest.test");
    await world.waitForEvent((e) => e.type === "delivered" && e.recipient === "other@dest.test");

    const byTag = (await world.api("GET", "/v1/events?tag=spring-sale")).json.events;
    assert.deepEqual(byTag.map((e: any) => e.type), ["received", "delivered"]);
    const byMessage = (await world.api("GET", `/v1/events?message=${other.json.id}&type=delivered`)).json.events;
    assert.deepEqual(byMessage.map((e: any) => `${e.type} ${e.recipient}`), ["delivered other@dest.test"]);
    const byRecipient = (await world.api("GET", "/v1/events?recipient=permfail@dest.test&type=bounced,dsn_sent"))
      .json.events;
    assert.deepEqual(byRecipient.map((e: any) => e.type), ["bounced", "dsn_sent"]);

    const created = await runRelay(
      ["keys", "create", "--name", "reader", "--scope", "read", "--domains", "other.test", "--json"],
      { dataDir: world.relay.dataDir },
    );
    assert.equal(created.code, 0, created.stderr);
    const token = JSON.parse(created.stdout).token;
    const response = await fetch(world.relay.url("/v1/events?limit=1000"), {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 200);
    const seen = ((await response.json()) as any).events;
    assert.ok(seen.length >= 2);
    assert.ok(seen.every((e: any) => e.message_id === other.json.id), JSON.stringify(seen.map((e: any) => e.type)));
  });

  it("relay events export writes the run as JSON lines and as accounting CSV", { timeout: 60_000 }, async () => {
    const all = await world.events();
    const jsonl = await runRelay(["events", "export", "--format", "jsonl"], { dataDir: world.relay.dataDir });
    assert.equal(jsonl.code, 0, jsonl.stderr);
    const exported = jsonl.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(exported.slice(0, all.length), all, "the API's events, in order, with the same fields");

    const csv = await runRelay(["events", "export", "--since", "1h", "--type", "delivered,bounced"], {
      dataDir: world.relay.dataDir,
    });
    assert.equal(csv.code, 0, csv.stderr);
    const [header, ...rows] = csv.stdout.trim().split("\n").map((l) => {
      const parsed = parseCsvLine(l);
      assert.ok("fields" in parsed);
      return parsed.fields;
    });
    const records = rows.map((r) => Object.fromEntries(header!.map((c, i) => [c, r[i]])));
    assert.ok(records.every((r) => r.type === "delivered" || r.type === "bounced"));
    const delivered = records.find((r) => r.rcpt === "ok@dest.test" && r.type === "delivered")!;
    assert.equal(delivered.orig, "sender@sender.test");
    assert.equal(delivered.dsnAction, "relayed");
    assert.equal(delivered.dlvDestinationIp, "127.0.0.1");
    assert.equal(delivered.dlvSourceIp, "127.0.0.1");
    assert.equal(delivered.srcIp, "127.0.0.1");
    assert.match(delivered.dsnDiag!, /^smtp;250 /);
    const bounced = records.find((r) => r.rcpt === "permfail@dest.test")!;
    assert.deepEqual([bounced.dsnAction, bounced.dsnStatus, bounced.bounceCat], ["failed", "5.1.1", "bad-mailbox"]);

    const bad = await runRelay(["events", "export", "--since", "last tuesday"], { dataDir: world.relay.dataDir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since: expected an ISO 8601 time or a duration/);
  });
});

describe("RELAY_LOG_FORMAT=pretty", { timeout: 60_000 }, () => {
  let world: World;
  before(async () => {
    world = await startWorld({ env: { RELAY_LOG_LEVEL: "info", RELAY_LOG_FORMAT: "pretty" } });
  });
  after(async () => {
    await world?.close();
  });

  it("writes readable key=value lines, quoting only what has spaces", { timeout: 60_000 }, async () => {
    await sendMail(world.relay.smtpPort, "sender@sender.test", ["ok@dest.test"], message("pretty"));
    const line = await waitUntil(
      () => Promise.resolve(world.relay.stderr.split("\n").find((l) => / INFO {2}delivered /.test(l))),
      (l) => l !== undefined,
      { what: "a pretty delivered line", timeout: 20_000, every: 50 },
    );
    assert.match(
      line!,
      /^\d{4}-\d\d-\d\dT\S+Z INFO {2}delivered message_id=[0-9A-Z]{26} recipient=ok@dest\.test destination=mx\.dest\.test~[0-9a-f]{8} mx=mx\.dest\.test mx_ip=127\.0\.0\.1 source_ip=127\.0\.0\.1 attempt=1 delay_ms=\d+ duration_ms=\d+ reply="250 [^"]*"$/,
    );
    assert.doesNotMatch(world.relay.stderr, /^\{/m, "no JSON lines");
  });
});
