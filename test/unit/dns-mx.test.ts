import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createDnsClient } from "../../src/dns/client.ts";
import { type MailHostsResult, resolveMailHosts } from "../../src/dns/mx.ts";
import { createResolver, type Resolver } from "../../src/dns/resolver.ts";
import { type DnsServer, startDnsServer, type Zone } from "../fixtures/dns-server.ts";

const ZONE: Zone = {
  "multi.test": {
    MX: [
      { preference: 20, exchange: "c.multi.test" },
      { preference: 10, exchange: "a.multi.test" },
      { preference: 10, exchange: "b.multi.test" },
      { preference: 30, exchange: "noaddr.multi.test" },
    ],
  },
  "a.multi.test": { A: ["192.0.2.1"] },
  "b.multi.test": { A: ["192.0.2.2"], AAAA: ["2001:db8::2"] },
  "c.multi.test": { A: ["192.0.2.3"] },
  "noaddr.multi.test": { TXT: ["no address here"] },
  "null.test": { MX: [{ preference: 0, exchange: "." }] },
  "implicit.test": { A: ["192.0.2.9"], AAAA: ["2001:db8::9"] },
  "bare.test": { TXT: ["exists, no MX, no address"] },
  "broken.test": { servfail: true },
  "badhost.test": { MX: [{ preference: 10, exchange: "gone.test" }, { preference: 20, exchange: "flaky.test" }] },
  "flaky.test": { servfail: true },
  "onlyflaky.test": { MX: [{ preference: 10, exchange: "flaky.test" }] },
  "xn--bcher-kva.test": { MX: [{ preference: 10, exchange: "mx.xn--bcher-kva.test" }] },
  "mx.xn--bcher-kva.test": { A: ["192.0.2.7"] },
};

let server: DnsServer;
let resolver: Resolver;
before(async () => {
  server = await startDnsServer(ZONE);
  resolver = createResolver(createDnsClient({ servers: [server], attempts: 1 }));
});
after(() => server.close());

const summary = (r: MailHostsResult): unknown =>
  r.kind === "hosts"
    ? r.hosts.map((h) => `${h.preference} ${h.name} ${h.addresses.join(",")}${h.implicit ? " implicit" : ""}`)
    : r;

describe("resolveMailHosts (RFC 5321 5.1, RFC 7505)", () => {
  test("sorted by preference, equal preferences in random order, hosts without an address skipped", async () => {
    const first = await resolveMailHosts(resolver, "multi.test", { random: () => 0.99 });
    assert.deepEqual(summary(first), [
      "10 a.multi.test 192.0.2.1",
      "10 b.multi.test 2001:db8::2,192.0.2.2",
      "20 c.multi.test 192.0.2.3",
    ]);
    const sequence = [0.99, 0.5, 0.99]; // Fisher-Yates over [c, a, b, noaddr]: swaps a and b
    const other = await resolveMailHosts(resolver, "MULTI.test.", { random: () => sequence.shift() ?? 0 });
    assert.deepEqual(summary(other), [
      "10 b.multi.test 2001:db8::2,192.0.2.2",
      "10 a.multi.test 192.0.2.1",
      "20 c.multi.test 192.0.2.3",
    ]);
  });

  test("with Math.random both orders of the equal pair occur", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 64 && seen.size < 2; i++) {
      const r = await resolveMailHosts(resolver, "multi.test");
      assert.equal(r.kind, "hosts");
      if (r.kind === "hosts") seen.add(r.hosts[0]!.name);
    }
    assert.deepEqual([...seen].sort(), ["a.multi.test", "b.multi.test"]);
  });

  test("an internationalized domain is looked up by its A-labels (RFC 5890)", async () => {
    for (const domain of ["bücher.test", "BÜCHER.test.", "xn--bcher-kva.test"]) {
      assert.deepEqual(
        summary(await resolveMailHosts(resolver, domain)),
        ["10 mx.xn--bcher-kva.test 192.0.2.7"],
        domain,
      );
    }
    assert.deepEqual(await resolveMailHosts(resolver, "bad\u200b\u3002.test"), { kind: "no-domain" });
  });

  test("null MX: the domain takes no mail", async () => {
    assert.deepEqual(await resolveMailHosts(resolver, "null.test"), { kind: "null-mx" });
  });

  test("no MX records: the domain is its own mail host (implicit MX)", async () => {
    assert.deepEqual(summary(await resolveMailHosts(resolver, "implicit.test")), [
      "0 implicit.test 2001:db8::9,192.0.2.9 implicit",
    ]);
    assert.equal((await resolveMailHosts(resolver, "bare.test")).kind, "no-hosts");
  });

  test("NXDOMAIN and invalid names: no-domain (permanent)", async () => {
    assert.deepEqual(await resolveMailHosts(resolver, "nonexistent.test"), { kind: "no-domain" });
    assert.deepEqual(await resolveMailHosts(resolver, "bad..name"), { kind: "no-domain" });
  });

  test("SERVFAIL on the MX lookup is temporary, never a bounce", async () => {
    const r = await resolveMailHosts(resolver, "broken.test");
    assert.equal(r.kind, "temporary");
    assert.equal(r.kind === "temporary" && r.error, "SERVFAIL");
  });

  test("MX hosts without addresses: permanent when they do not exist, temporary when a lookup failed", async () => {
    assert.equal((await resolveMailHosts(resolver, "onlyflaky.test")).kind, "temporary");
    const r = await resolveMailHosts(resolver, "badhost.test");
    assert.equal(r.kind, "temporary");
    server.setZone({ ...ZONE, "flaky.test": {} });
    const fresh = createResolver(createDnsClient({ servers: [server] }));
    assert.equal((await resolveMailHosts(fresh, "badhost.test")).kind, "no-hosts");
    server.setZone({ ...ZONE, "flaky.test": { A: ["192.0.2.77"] } });
    assert.deepEqual(
      summary(await resolveMailHosts(createResolver(createDnsClient({ servers: [server] })), "badhost.test")),
      ["20 flaky.test 192.0.2.77"],
    );
    server.setZone(ZONE);
  });

  test("a timeout is temporary too", async () => {
    const silent = await startDnsServer({ "slow.test": { drop: true } });
    try {
      const r = await resolveMailHosts(
        createResolver(createDnsClient({ servers: [silent], timeoutMs: 50, attempts: 1 })),
        "slow.test",
      );
      assert.equal(r.kind === "temporary" && r.error, "TIMEOUT");
    } finally {
      await silent.close();
    }
  });
});
