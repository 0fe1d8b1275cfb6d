import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { checkInbound, type InboundResults } from "../../src/auth/inbound/index.ts";
import { createDnsClient } from "../../src/dns/client.ts";
import { createResolver, type Resolver } from "../../src/dns/resolver.ts";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import { dkimSigned, ed25519Key, message, rsaKey, type TestKey } from "../helpers/mail-auth.ts";

let dns: DnsServer;
let resolver: Resolver;
let rsa: TestKey;
let ed: TestKey;
let other: TestKey;
let weak: TestKey;
before(async () => {
  rsa = rsaKey();
  ed = ed25519Key();
  other = rsaKey();
  weak = rsaKey(512);
  dns = await startDnsServer({
    "rsa._domainkey.signer.test": { TXT: [rsa.record] },
    "ed._domainkey.signer.test": { TXT: [ed.record] },
    "weak._domainkey.signer.test": { TXT: [weak.record] },
    "garbage._domainkey.signer.test": { TXT: ["v=DKIM1; k=rsa; p=bm90IGEga2V5"] },
    "flaky._domainkey.signer.test": { servfail: true },
  });
  resolver = createResolver(createDnsClient({ servers: [dns], attempts: 1 }));
});
after(() => dns.close());

const clock = { now: () => Date.now() };
async function check(text: string): Promise<InboundResults> {
  return checkInbound(
    {
      message: new TextEncoder().encode(text),
      clientIp: "192.0.2.10",
      heloName: "client.example",
      mailFrom: "a@elsewhere.test",
      hostname: "relay.test",
    },
    { resolver, clock },
  );
}

describe("inbound DKIM (RFC 6376, RFC 8463): every signature verified", () => {
  test("pass with an RSA key", async () => {
    const r = await check(await dkimSigned(message("a@signer.test"), "signer.test", "rsa", rsa));
    assert.equal(r.dkim.length, 1);
    assert.equal(r.dkim[0]!.result, "pass");
    assert.equal(r.dkim[0]!.domain, "signer.test");
    assert.equal(r.dkim[0]!.selector, "rsa");
    assert.match(
      r.authenticationResults,
      /\bdkim=pass header\.d=signer\.test header\.s=rsa header\.a=rsa-sha256 header\.b=\S{8}/,
    );
  });

  test("pass with an Ed25519 key (RFC 8463)", async () => {
    const r = await check(await dkimSigned(message("a@signer.test"), "signer.test", "ed", ed));
    assert.equal(r.dkim[0]!.result, "pass");
    assert.equal(r.dkim[0]!.algorithm, "ed25519-sha256");
  });

  test("fail: the body was altered after signing", async () => {
    const signed = await dkimSigned(message("a@signer.test"), "signer.test", "rsa", rsa);
    const r = await check(signed.replace("Second line.", "Second line, changed."));
    assert.equal(r.dkim[0]!.result, "fail");
    assert.match(r.dkim[0]!.comment ?? "", /body hash/);
    assert.match(r.authenticationResults, /\bdkim=fail \(body hash did not verify\) header\.d=signer\.test/);
  });

  test("fail: a signed header field was altered", async () => {
    const signed = await dkimSigned(message("a@signer.test", "original"), "signer.test", "rsa", rsa);
    const r = await check(signed.replace("Subject: original", "Subject: altered"));
    assert.equal(r.dkim[0]!.result, "fail");
  });

  test("fail: signed with a key other than the published one", async () => {
    const r = await check(await dkimSigned(message("a@signer.test"), "signer.test", "rsa", other));
    assert.equal(r.dkim[0]!.result, "fail");
  });

  test("none: no signature", async () => {
    const r = await check(message("a@signer.test"));
    assert.deepEqual(r.dkim.map((d) => d.result), ["none"]);
    assert.match(r.authenticationResults, /\bdkim=none\b/);
  });

  test("permerror: no key published, an unusable key; policy: a key under 1024 bits", async () => {
    const nokey = await check(await dkimSigned(message("a@signer.test"), "signer.test", "missing", rsa));
    assert.equal(nokey.dkim[0]!.result, "permerror");
    const garbage = await check(await dkimSigned(message("a@signer.test"), "signer.test", "garbage", rsa));
    assert.equal(garbage.dkim[0]!.result, "permerror");
    const short = await check(await dkimSigned(message("a@signer.test"), "signer.test", "weak", weak));
    assert.equal(short.dkim[0]!.result, "policy");
  });

  test("temperror: the key lookup fails (SERVFAIL)", async () => {
    const r = await check(await dkimSigned(message("a@signer.test"), "signer.test", "flaky", rsa));
    assert.equal(r.dkim[0]!.result, "temperror");
  });

  test("a signature mailauth cannot use is reported, not dropped", async () => {
    const signed = await dkimSigned(message("a@signer.test"), "signer.test", "rsa", rsa);
    const bogus =
      "DKIM-Signature: v=1; a=rsa-md5; c=relaxed/relaxed; d=bogus.test; s=x; h=from; bh=AAAA; b=QUJDREVGR0hJSg==\r\n";
    const r = await check(bogus + signed);
    assert.deepEqual(r.dkim.map((d) => `${d.domain} ${d.result}`).sort(), ["bogus.test permerror", "signer.test pass"]);
  });

  test("two signatures, each with its own result", async () => {
    const once = await dkimSigned(message("a@signer.test"), "signer.test", "ed", ed);
    const twice = await dkimSigned(once, "signer.test", "missing", rsa);
    const r = await check(twice);
    assert.deepEqual(r.dkim.map((d) => `${d.selector} ${d.result}`).sort(), ["ed pass", "missing permerror"]);
    assert.equal((r.authenticationResults.match(/\bdkim=/g) ?? []).length, 2);
  });
});
