import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { checkInbound, type InboundResults } from "../../src/auth/inbound/index.ts";
import { createDnsClient } from "../../src/dns/client.ts";
import { createResolver, type Resolver } from "../../src/dns/resolver.ts";
import { type DnsServer, startDnsServer, type Zone } from "../fixtures/dns-server.ts";
import { message } from "../helpers/mail-auth.ts";

const CLIENT = "192.0.2.10";
const many = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i + 1}.many.test`, { A: ["198.51.100.1"] }]));

const ZONE: Zone = {
  "pass.test": { TXT: ["v=spf1 ip4:192.0.2.0/28 -all", "some-verification=abc"] },
  "fail.test": { TXT: ["v=spf1 ip4:198.51.100.0/24 -all"] },
  "softfail.test": { TXT: ["v=spf1 ip4:198.51.100.0/24 ~all"] },
  "neutral.test": { TXT: ["v=spf1 ?all"] },
  "nospf.test": { TXT: ["google-site-verification=xyz"], MX: [{ preference: 10, exchange: "mx.nospf.test" }] },
  "badrecord.test": { TXT: ["v=spf1 ip4:192.0.2.10 frobnicate:x -all"] },
  "twospf.test": { TXT: ["v=spf1 -all", "v=spf1 +all"] },
  "manylookups.test": {
    TXT: [`v=spf1 ${Array.from({ length: 11 }, (_, i) => `a:h${i + 1}.many.test`).join(" ")} -all`],
  },
  ...many,
  "broken.test": { servfail: true },
  "includesbroken.test": { TXT: ["v=spf1 include:_spf.broken.test -all"] },
  "_spf.broken.test": { servfail: true },
  "includes.test": { TXT: ["v=spf1 include:pass.test -all"] },
  "amx.test": { TXT: ["v=spf1 a mx -all"], A: ["198.51.100.7"], MX: [{ preference: 10, exchange: "mx.amx.test" }] },
  "mx.amx.test": { A: [CLIENT] },
  "10.2.0.192.in-addr.arpa": { PTR: ["mail.ptr.test"] },
  "mail.ptr.test": { A: [CLIENT] },
  "ptr.test": { TXT: ["v=spf1 ptr -all"] },
  "mta.helo.test": { TXT: ["v=spf1 ip4:192.0.2.10 -all"] },
};

let dns: DnsServer;
let resolver: Resolver;
before(async () => {
  dns = await startDnsServer(ZONE);
  resolver = createResolver(createDnsClient({ servers: [dns], attempts: 1 }));
});
after(() => dns.close());

const clock = { now: () => Date.now() };
async function check(mailFrom: string | null, heloName = "client.example", clientIp = CLIENT): Promise<InboundResults> {
  const bytes = new TextEncoder().encode(message(mailFrom ?? "postmaster@elsewhere.test"));
  return checkInbound({ message: bytes, clientIp, heloName, mailFrom, hostname: "relay.test" }, { resolver, clock });
}

describe("inbound SPF (RFC 7208), through our resolver", () => {
  test("pass: the client is inside the sender domain's ip4 range", async () => {
    const r = await check("bounce@pass.test");
    assert.equal(r.spf.result, "pass");
    assert.equal(r.spf.domain, "pass.test");
    assert.equal(r.spf.record, "v=spf1 ip4:192.0.2.0/28 -all");
    assert.match(r.authenticationResults, /\bspf=pass \(.*\) smtp\.mailfrom=bounce@pass\.test;/);
  });

  test("fail (-all), softfail (~all), neutral (?all)", async () => {
    assert.equal((await check("a@fail.test")).spf.result, "fail");
    assert.equal((await check("a@softfail.test")).spf.result, "softfail");
    assert.equal((await check("a@neutral.test")).spf.result, "neutral");
  });

  test("include:, a and mx mechanisms resolve through the fixture", async () => {
    assert.equal((await check("a@includes.test")).spf.result, "pass");
    assert.equal((await check("a@amx.test")).spf.result, "pass", "mx.amx.test has the client's address");
    assert.equal((await check("a@amx.test", "x", "198.51.100.7")).spf.result, "pass", "the domain's own A");
    assert.equal((await check("a@ptr.test")).spf.result, "pass", "ptr: a validated PTR name inside the domain");
  });

  test("none: no SPF record, or no such domain", async () => {
    const r = await check("a@nospf.test");
    assert.equal(r.spf.result, "none");
    assert.equal((await check("a@nxdomain.test")).spf.result, "none");
    assert.match(r.authenticationResults, /\bspf=none\b/);
  });

  test("permerror: an unknown mechanism, two SPF records", async () => {
    const bad = await check("a@badrecord.test");
    assert.equal(bad.spf.result, "permerror");
    assert.match(bad.spf.comment ?? "", /Unknown mechanism frobnicate/);
    assert.equal((await check("a@twospf.test")).spf.result, "permerror");
  });

  test("permerror: more than 10 DNS-querying mechanisms (RFC 7208 4.6.4)", async () => {
    const r = await check("a@manylookups.test");
    assert.equal(r.spf.result, "permerror");
    assert.match(r.spf.comment ?? "", /Too many DNS requests/);
  });

  test("temperror: SERVFAIL on the record, and on an include:'s record (RFC 7208 5.2)", async () => {
    const direct = await check("a@broken.test");
    assert.equal(direct.spf.result, "temperror");
    assert.match(direct.authenticationResults, /\bspf=temperror\b/);
    assert.equal((await check("a@includesbroken.test")).spf.result, "temperror");
  });

  test("null reverse-path: the HELO identity is checked (RFC 7208 2.4)", async () => {
    const r = await check(null, "mta.helo.test");
    assert.equal(r.spf.identity, "helo");
    assert.equal(r.spf.result, "pass");
    assert.match(r.authenticationResults, /\bspf=pass \(.*\) smtp\.helo=mta\.helo\.test;/);
    const literal = await check(null, "[192.0.2.10]");
    assert.equal(literal.spf.result, "none", "an address literal HELO has no domain to check");
  });

  test("an IPv4-mapped client address is checked as IPv4", async () => {
    const r = await check("bounce@pass.test", "x", `::ffff:${CLIENT}`);
    assert.equal(r.spf.result, "pass");
    assert.match(r.authenticationResults, /smtp\.remote-ip=192\.0\.2\.10$/);
  });
});
