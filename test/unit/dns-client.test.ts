import assert from "node:assert/strict";
import * as dgram from "node:dgram";
import { after, describe, test } from "node:test";
import { createDnsClient } from "../../src/dns/client.ts";
import { parseResolvConf, systemNameservers } from "../../src/dns/resolv-conf.ts";
import { decodeMessage, encodeMessage, type Message } from "../../src/dns/wire.ts";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";

/** A UDP peer that hands each query to `script` and sends back whatever it returns. */
async function scripted(
  script: (q: Message) => Uint8Array[],
): Promise<{ port: number; seen: Message[]; close(): Promise<void> }> {
  const socket = dgram.createSocket("udp4");
  const seen: Message[] = [];
  socket.on("message", (msg, rinfo) => {
    const d = decodeMessage(new Uint8Array(msg));
    if (!d.ok) return;
    seen.push(d.message);
    for (const out of script(d.message)) socket.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((done) => socket.bind(0, "127.0.0.1", () => done()));
  return { port: socket.address().port, seen, close: () => new Promise((done) => socket.close(() => done())) };
}

const replyTo = (q: Message, over: Partial<Message["header"]> = {}, rest: Partial<Message> = {}): Uint8Array =>
  encodeMessage({
    header: { ...q.header, qr: true, ra: true, ...over },
    questions: q.questions,
    answers: [],
    authorities: [],
    additionals: [],
    ...rest,
  });

const servers: DnsServer[] = [];
const fixture = async (...args: Parameters<typeof startDnsServer>): Promise<DnsServer> => {
  const s = await startDnsServer(...args);
  servers.push(s);
  return s;
};
after(async () => {
  for (const s of servers) await s.close();
});

describe("DNS client", () => {
  test("answers, NXDOMAIN and NODATA with the SOA's negative TTL", async () => {
    const s = await fixture({ "example.test": { A: ["192.0.2.1", "192.0.2.2"], ttl: 120 } }, { negativeTtl: 45 });
    const client = createDnsClient({ servers: [s] });
    const ok = await client.query("Example.Test.", "A");
    assert.ok(ok.ok);
    assert.deepEqual(ok.answers.map((r) => (r.type === "A" ? r.address : "")), ["192.0.2.1", "192.0.2.2"]);
    assert.equal(ok.ttl, 120);
    assert.deepEqual(await client.query("missing.test", "A"), { ok: false, error: "NXDOMAIN", ttl: 45 });
    assert.deepEqual(await client.query("example.test", "MX"), { ok: false, error: "NODATA", ttl: 45 });
  });

  test("a silent server times out and the next server answers", async () => {
    const silent = await scripted(() => []);
    const s = await fixture({ "example.test": { A: ["192.0.2.1"] } });
    const client = createDnsClient({ servers: [{ host: "127.0.0.1", port: silent.port }, s], timeoutMs: 100 });
    const r = await client.query("example.test", "A");
    assert.equal(r.ok, true);
    assert.equal(silent.seen.length, 1);
    await silent.close();
  });

  test("every server silent: TIMEOUT after `attempts` rounds", async () => {
    const a = await scripted(() => []);
    const b = await fixture({ "slow.test": { A: ["192.0.2.1"], drop: true } });
    const client = createDnsClient({ servers: [{ host: "127.0.0.1", port: a.port }, b], timeoutMs: 50, attempts: 2 });
    const r = await client.query("slow.test", "A");
    assert.equal(r.ok ? "ok" : r.error, "TIMEOUT");
    assert.equal(a.seen.length, 2);
    assert.equal(b.queries.length, 2);
    await a.close();
  });

  test("SERVFAIL moves to the next server; SERVFAIL everywhere is reported as such", async () => {
    const bad = await fixture({ "example.test": { servfail: true } });
    const good = await fixture({ "example.test": { TXT: ["hi"] } });
    assert.equal((await createDnsClient({ servers: [bad, good] }).query("example.test", "TXT")).ok, true);
    const r = await createDnsClient({ servers: [bad], attempts: 1 }).query("example.test", "TXT");
    assert.equal(r.ok ? "ok" : r.error, "SERVFAIL");
  });

  test("TC on UDP: the same question is asked again over TCP", async () => {
    const big = "k=rsa; p=" + "A".repeat(3000);
    const s = await fixture({
      "forced.test": { A: ["192.0.2.9"], truncate: true },
      "big.test": { TXT: [big, "second"] },
    });
    const client = createDnsClient({ servers: [s] });
    const forced = await client.query("forced.test", "A");
    assert.ok(forced.ok);
    const txt = await client.query("big.test", "TXT");
    assert.ok(txt.ok);
    assert.deepEqual(txt.answers.map((r) => (r.type === "TXT" ? r.strings.join("") : "")), [big, "second"]);
    assert.deepEqual(s.queries.map((q) => `${q.name}/${q.transport}`), [
      "forced.test/udp",
      "forced.test/tcp",
      "big.test/udp",
      "big.test/tcp",
    ]);
  });

  test("replies with the wrong id or question are ignored (RFC 5452)", async () => {
    const spoofer = await scripted((q) => [
      replyTo({ ...q, header: { ...q.header, id: (q.header.id + 1) & 0xffff } }, {}, {
        answers: [{ type: "A", name: "spoof.test", class: 1, ttl: 1, address: "6.6.6.6" }],
      }),
      replyTo({ ...q, questions: [{ name: "other.test", type: 1, class: 1 }] }, {}, {
        answers: [{ type: "A", name: "other.test", class: 1, ttl: 1, address: "6.6.6.7" }],
      }),
      replyTo(q, {}, { answers: [{ type: "A", name: "spoof.test", class: 1, ttl: 9, address: "192.0.2.3" }] }),
    ]);
    const r = await createDnsClient({ servers: [{ host: "127.0.0.1", port: spoofer.port }] }).query("spoof.test", "A");
    assert.ok(r.ok);
    assert.deepEqual(r.answers.map((a) => (a.type === "A" ? a.address : "")), ["192.0.2.3"]);
    await spoofer.close();
  });

  test("a malformed reply with our id is FORMERR; a server without EDNS is asked again without OPT", async () => {
    const broken = await scripted((
      q,
    ) => [Uint8Array.from([q.header.id >> 8, q.header.id & 0xff, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 12])]);
    const r = await createDnsClient({ servers: [{ host: "127.0.0.1", port: broken.port }], attempts: 1 }).query(
      "x.test",
      "A",
    );
    assert.equal(r.ok ? "ok" : r.error, "FORMERR");
    const old = await scripted((q) => [
      q.additionals.length > 0
        ? replyTo(q, { rcode: 1 })
        : replyTo(q, {}, { answers: [{ type: "A", name: "x.test", class: 1, ttl: 5, address: "192.0.2.4" }] }),
    ]);
    assert.equal(
      (await createDnsClient({ servers: [{ host: "127.0.0.1", port: old.port }] }).query("x.test", "A")).ok,
      true,
    );
    assert.deepEqual(old.seen.map((m) => m.additionals.length), [1, 0]);
    await broken.close();
    await old.close();
  });

  test("nothing listening: NETWORK or TIMEOUT, never a throw", async () => {
    const gone = await scripted(() => []);
    await gone.close();
    const r = await createDnsClient({ servers: [{ host: "127.0.0.1", port: gone.port }], timeoutMs: 100, attempts: 1 })
      .query("x.test", "A");
    assert.ok(!r.ok && (r.error === "NETWORK" || r.error === "TIMEOUT"));
    assert.equal((await createDnsClient({ servers: [{ host: "127.0.0.1", port: 9 }] }).query("a..b", "A")).ok, false);
  });

  test("query ids are random and questions use the given name", async () => {
    const s = await scripted((q) => [replyTo(q, { rcode: 3 })]);
    const client = createDnsClient({ servers: [{ host: "127.0.0.1", port: s.port }] });
    for (let i = 0; i < 8; i++) await client.query("x.test", "A");
    assert.ok(new Set(s.seen.map((m) => m.header.id)).size > 1);
    assert.ok(s.seen.every((m) => m.header.rd && m.questions[0]?.name === "x.test"));
    await s.close();
  });

  test("resolv.conf: nameserver lines in order, 127.0.0.1:53 when none", async () => {
    const text =
      "# comment\nsearch example.test\nnameserver 192.0.2.53\nnameserver ::1\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:1\n";
    assert.deepEqual(parseResolvConf(text), [
      { host: "192.0.2.53", port: 53 },
      { host: "::1", port: 53 },
      { host: "fe80::1", port: 53 },
    ]);
    assert.deepEqual(await systemNameservers("/nonexistent/resolv.conf"), [{ host: "127.0.0.1", port: 53 }]);
  });
});
