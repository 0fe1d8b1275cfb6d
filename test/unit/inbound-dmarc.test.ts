import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { checkInbound, type InboundResults } from "../../src/auth/inbound/index.ts";
import { createDnsClient } from "../../src/dns/client.ts";
import { createResolver, type Resolver } from "../../src/dns/resolver.ts";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import { dkimSigned, message, rsaKey, type TestKey } from "../helpers/mail-auth.ts";

const CLIENT = "192.0.2.10";
let dns: DnsServer;
let resolver: Resolver;
let key: TestKey;
before(async () => {
  key = rsaKey();
  const spf = { TXT: [`v=spf1 ip4:${CLIENT} -all`] };
  const dkimKey = { TXT: [key.record] };
  dns = await startDnsServer({
    // relaxed (default) alignment
    "org.test": spf,
    "_dmarc.org.test": { TXT: ["v=DMARC1; p=reject; rua=mailto:dmarc@org.test"] },
    "mail.org.test": spf,
    "sel._domainkey.org.test": dkimKey,
    "sel._domainkey.mail.org.test": dkimKey,
    // strict DKIM alignment
    "strictdkim.test": {},
    "_dmarc.strictdkim.test": { TXT: ["v=DMARC1; p=quarantine; adkim=s"] },
    "sel._domainkey.mail.strictdkim.test": dkimKey,
    "sel._domainkey.strictdkim.test": dkimKey,
    // strict SPF alignment
    "strictspf.test": spf,
    "_dmarc.strictspf.test": { TXT: ["v=DMARC1; p=reject; aspf=s"] },
    "bounce.strictspf.test": spf,
    // subdomain policy: the org record has sp=, the subdomain none of its own
    "pol.test": {},
    "_dmarc.pol.test": { TXT: ["v=DMARC1; p=reject; sp=quarantine"] },
    "sub.pol.test": {},
    // a subdomain with a record of its own: its p= applies, not the org's sp=
    "own.pol.test": {},
    "_dmarc.own.pol.test": { TXT: ["v=DMARC1; p=none"] },
    "nodmarc.test": spf,
    "_dmarc.flaky.test": { servfail: true },
    "_dmarc.nopolicy.test": { TXT: ["v=DMARC1; pct=100"] },
    "other.test": { TXT: ["v=spf1 -all"] },
  });
  resolver = createResolver(createDnsClient({ servers: [dns], attempts: 1 }));
});
after(() => dns.close());

const clock = { now: () => Date.now() };
async function check(text: string, mailFrom: string): Promise<InboundResults> {
  return checkInbound(
    {
      message: new TextEncoder().encode(text),
      clientIp: CLIENT,
      heloName: "client.example",
      mailFrom,
      hostname: "relay.test",
    },
    { resolver, clock },
  );
}

describe("inbound DMARC (RFC 7489)", () => {
  test("pass through SPF alignment alone", async () => {
    const r = await check(message("a@org.test"), "bounce@org.test");
    assert.equal(r.spf.result, "pass");
    assert.deepEqual(r.dkim.map((d) => d.result), ["none"]);
    assert.equal(r.dmarc.result, "pass");
    assert.equal(r.dmarc.alignment?.spf.domain, "org.test");
    assert.equal(r.dmarc.alignment?.dkim.domain, undefined);
    assert.equal(r.dmarc.disposition, "none");
    assert.match(r.authenticationResults, /\bdmarc=pass \(p=REJECT dis=NONE\) header\.from=org\.test;/);
  });

  test("pass through DKIM alignment alone (SPF fails for the envelope domain)", async () => {
    const signed = await dkimSigned(message("a@org.test"), "org.test", "sel", key);
    const r = await check(signed, "bounce@other.test");
    assert.equal(r.spf.result, "fail");
    assert.equal(r.dmarc.result, "pass");
    assert.equal(r.dmarc.alignment?.dkim.domain, "org.test");
    assert.equal(r.dmarc.alignment?.spf.domain, undefined);
  });

  test("fail with p=reject: neither identifier aligned and passing", async () => {
    const r = await check(message("a@org.test"), "bounce@other.test");
    assert.equal(r.dmarc.result, "fail");
    assert.equal(r.dmarc.policy, "reject");
    assert.equal(r.dmarc.disposition, "reject");
    assert.match(r.authenticationResults, /\bdmarc=fail \(p=REJECT dis=REJECT\) header\.from=org\.test;/);
  });

  test("a DKIM pass for an unrelated domain does not align", async () => {
    const signed = await dkimSigned(message("a@org.test"), "strictdkim.test", "sel", key);
    const r = await check(signed, "bounce@other.test");
    assert.equal(r.dkim[0]!.result, "pass");
    assert.equal(r.dmarc.result, "fail");
  });

  test("relaxed alignment: a subdomain of the From domain aligns (DKIM d= and SPF)", async () => {
    const signed = await dkimSigned(message("a@org.test"), "mail.org.test", "sel", key);
    const byDkim = await check(signed, "bounce@other.test");
    assert.equal(byDkim.dmarc.result, "pass");
    assert.equal(byDkim.dmarc.alignment?.dkim.strict, false);
    const bySpf = await check(message("a@org.test"), "bounce@mail.org.test");
    assert.equal(bySpf.dmarc.result, "pass");
  });

  test("strict DKIM alignment (adkim=s): only d= equal to the From domain aligns", async () => {
    const sub = await check(
      await dkimSigned(message("a@strictdkim.test"), "mail.strictdkim.test", "sel", key),
      "bounce@other.test",
    );
    assert.equal(sub.dkim[0]!.result, "pass");
    assert.equal(sub.dmarc.alignment?.dkim.strict, true);
    assert.equal(sub.dmarc.result, "fail");
    assert.equal(sub.dmarc.policy, "quarantine");
    const exact = await check(
      await dkimSigned(message("a@strictdkim.test"), "strictdkim.test", "sel", key),
      "bounce@other.test",
    );
    assert.equal(exact.dmarc.result, "pass");
  });

  test("strict SPF alignment (aspf=s): the envelope domain must equal the From domain", async () => {
    const sub = await check(message("a@strictspf.test"), "x@bounce.strictspf.test");
    assert.equal(sub.spf.result, "pass");
    assert.equal(sub.dmarc.alignment?.spf.strict, true);
    assert.equal(sub.dmarc.result, "fail");
    const exact = await check(message("a@strictspf.test"), "x@strictspf.test");
    assert.equal(exact.dmarc.result, "pass");
  });

  test("subdomain policy: sp= of the organizational domain's record applies to a subdomain sender", async () => {
    const sub = await check(message("a@sub.pol.test"), "bounce@other.test");
    assert.equal(sub.dmarc.result, "fail");
    assert.equal(sub.dmarc.fromDomain, "sub.pol.test");
    assert.equal(sub.dmarc.policy, "quarantine");
    assert.equal(sub.dmarc.disposition, "quarantine");
    assert.match(
      sub.authenticationResults,
      /\bdmarc=fail \(p=REJECT sp=QUARANTINE dis=QUARANTINE\) header\.from=sub\.pol\.test/,
    );
    const org = await check(message("a@pol.test"), "bounce@other.test");
    assert.equal(org.dmarc.policy, "reject", "the organizational domain itself gets p=");
    const own = await check(message("a@own.pol.test"), "bounce@other.test");
    assert.equal(own.dmarc.policy, "none", "a subdomain with its own record gets that record's p=");
  });

  test("none without a record; temperror when the lookup fails; none for a record without p= and rua=", async () => {
    assert.equal((await check(message("a@nodmarc.test"), "a@nodmarc.test")).dmarc.result, "none");
    const flaky = await check(message("a@flaky.test"), "a@other.test");
    assert.equal(flaky.dmarc.result, "temperror");
    assert.match(flaky.authenticationResults, /\bdmarc=temperror\b/);
    assert.equal((await check(message("a@nopolicy.test"), "a@other.test")).dmarc.result, "none");
  });

  test("permerror: From addresses in more than one domain", async () => {
    const text = message("a@org.test").replace("From: Sender <a@org.test>", "From: a@org.test, b@strictspf.test");
    const r = await check(text, "bounce@org.test");
    assert.equal(r.dmarc.result, "permerror");
  });
});
