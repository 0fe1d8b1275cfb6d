import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { DnsClient, QueryResult } from "../../src/dns/client.ts";
import { createDnsClient } from "../../src/dns/client.ts";
import { createResolver } from "../../src/dns/resolver.ts";
import type { RecordType, ResourceRecord } from "../../src/dns/wire.ts";
import { startDnsServer } from "../fixtures/dns-server.ts";

/** A client that answers from a table and counts questions. */
function fakeClient(table: Record<string, QueryResult>): DnsClient & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async query(name: string, type: RecordType) {
      asked.push(`${type} ${name}`);
      return table[`${type} ${name}`] ?? { ok: false, error: "NXDOMAIN" };
    },
  };
}

const a = (name: string, address: string, ttl: number): ResourceRecord => ({ type: "A", name, class: 1, ttl, address });

describe("resolver cache and CNAMEs", () => {
  test("positive answers are cached for their TTL on the injected clock", async () => {
    let now = 1_000_000;
    const client = fakeClient({ "A host.test": { ok: true, answers: [a("host.test", "192.0.2.1", 30)], ttl: 30 } });
    const resolver = createResolver(client, { clock: { now: () => now } });
    assert.deepEqual(await resolver.a("HOST.test."), { ok: true, answers: ["192.0.2.1"], ttl: 30 });
    now += 29_000;
    assert.deepEqual(await resolver.a("host.test"), { ok: true, answers: ["192.0.2.1"], ttl: 1 });
    assert.equal(client.asked.length, 1);
    now += 1_000;
    await resolver.a("host.test");
    assert.equal(client.asked.length, 2);
  });

  test("TTLs are capped; TTL 0 is not cached", async () => {
    let now = 0;
    const client = fakeClient({
      "A long.test": { ok: true, answers: [a("long.test", "192.0.2.1", 604800)], ttl: 604800 },
      "A zero.test": { ok: true, answers: [a("zero.test", "192.0.2.2", 0)], ttl: 0 },
    });
    const resolver = createResolver(client, { clock: { now: () => now }, maxTtl: 100 });
    const long = await resolver.a("long.test");
    assert.equal(long.ok && long.ttl, 100);
    now += 100_000;
    await resolver.a("long.test");
    await resolver.a("zero.test");
    await resolver.a("zero.test");
    assert.deepEqual(client.asked, ["A long.test", "A long.test", "A zero.test", "A zero.test"]);
  });

  test("NXDOMAIN and NODATA are cached for the negative TTL (capped, default when no SOA); SERVFAIL is not", async () => {
    let now = 0;
    const client = fakeClient({
      "MX gone.test": { ok: false, error: "NXDOMAIN", ttl: 5000 },
      "MX empty.test": { ok: false, error: "NODATA" },
      "MX broken.test": { ok: false, error: "SERVFAIL" },
    });
    const resolver = createResolver(client, { clock: { now: () => now }, maxNegativeTtl: 300, defaultNegativeTtl: 20 });
    assert.deepEqual(await resolver.mx("gone.test"), { ok: false, error: "NXDOMAIN", ttl: 300 });
    assert.deepEqual(await resolver.mx("empty.test"), { ok: false, error: "NODATA", ttl: 20 });
    await resolver.mx("broken.test");
    now += 19_000;
    await Promise.all([resolver.mx("gone.test"), resolver.mx("empty.test"), resolver.mx("broken.test")]);
    assert.deepEqual(client.asked, ["MX gone.test", "MX empty.test", "MX broken.test", "MX broken.test"]);
    now += 1_000;
    await resolver.mx("empty.test");
    assert.equal(client.asked.length, 5);
  });

  test("concurrent lookups of one key share one query", async () => {
    const client = fakeClient({ "A host.test": { ok: true, answers: [a("host.test", "192.0.2.1", 30)], ttl: 30 } });
    const resolver = createResolver(client, { clock: { now: () => 0 } });
    await Promise.all([resolver.a("host.test"), resolver.a("host.test"), resolver.a("HOST.TEST")]);
    assert.equal(client.asked.length, 1);
  });

  test("CNAME chains in the answer are followed; the TTL is the chain's smallest", async () => {
    const cname = (name: string, target: string, ttl: number): ResourceRecord => ({
      type: "CNAME",
      name,
      class: 1,
      ttl,
      target,
    });
    const client = fakeClient({
      "A www.test": {
        ok: true,
        answers: [
          cname("www.test", "Edge.Test.", 50),
          cname("edge.test", "host.test", 500),
          a("host.test", "192.0.2.7", 200),
        ],
        ttl: 50,
      },
      "A partial.test": { ok: true, answers: [cname("partial.test", "elsewhere.test", 40)], ttl: 40 },
      "A elsewhere.test": { ok: true, answers: [a("elsewhere.test", "192.0.2.8", 400)], ttl: 400 },
      "A dangling.test": { ok: true, answers: [cname("dangling.test", "nowhere.test", 40)], ttl: 40 },
    });
    const resolver = createResolver(client, { clock: { now: () => 0 } });
    assert.deepEqual(await resolver.a("www.test"), { ok: true, answers: ["192.0.2.7"], ttl: 50 });
    assert.deepEqual(await resolver.a("partial.test"), { ok: true, answers: ["192.0.2.8"], ttl: 40 });
    assert.equal((await resolver.a("dangling.test")).ok, false);
    assert.deepEqual(client.asked, [
      "A www.test",
      "A partial.test",
      "A elsewhere.test",
      "A dangling.test",
      "A nowhere.test",
    ]);
  });

  test("against the fixture: TXT strings joined per record, MX, AAAA, CNAME", async () => {
    const server = await startDnsServer({
      "example.test": {
        MX: [{ preference: 10, exchange: "MX.example.test." }],
        TXT: [["v=spf1 ", "ip4:192.0.2.0/24 ", "-all"], "other"],
      },
      "mx.example.test": { AAAA: ["2001:db8::25"] },
      "alias.example.test": { CNAME: "mx.example.test" },
    });
    try {
      const resolver = createResolver(createDnsClient({ servers: [server] }));
      const txt = await resolver.txt("example.test");
      assert.ok(txt.ok);
      assert.deepEqual([...txt.answers].sort(), ["other", "v=spf1 ip4:192.0.2.0/24 -all"]);
      assert.deepEqual(await resolver.mx("example.test"), {
        ok: true,
        answers: [{ preference: 10, exchange: "mx.example.test" }],
        ttl: 300,
      });
      assert.deepEqual(await resolver.aaaa("alias.example.test"), { ok: true, answers: ["2001:db8::25"], ttl: 300 });
    } finally {
      await server.close();
    }
  });
});
