import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { arcSeal, checkInbound, createInboundAuth, type InboundResults } from "../../src/auth/inbound/index.ts";
import { createDnsClient } from "../../src/dns/client.ts";
import { createResolver, type Resolver } from "../../src/dns/resolver.ts";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import { arcSealed, dkimSigned, ed25519Key, message, rsaKey, type TestKey } from "../helpers/mail-auth.ts";

const CLIENT = "192.0.2.10";
let dns: DnsServer;
let resolver: Resolver;
let origin: TestKey;
let hop1: TestKey;
let hop2: TestKey;
let ours: TestKey;
before(async () => {
  [origin, hop1, hop2, ours] = [rsaKey(), rsaKey(), rsaKey(), rsaKey()];
  dns = await startDnsServer({
    "sel._domainkey.origin.test": { TXT: [origin.record] },
    "arc._domainkey.fwd1.test": { TXT: [hop1.record] },
    "arc._domainkey.fwd2.test": { TXT: [hop2.record] },
    "arc._domainkey.relay.test": { TXT: [ours.record] },
  });
  resolver = createResolver(createDnsClient({ servers: [dns], attempts: 1 }));
});
after(() => dns.close());

const clock = { now: () => Date.now() };
const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
async function check(text: string): Promise<InboundResults> {
  return checkInbound({
    message: encode(text),
    clientIp: CLIENT,
    heloName: "fwd.example",
    mailFrom: "list@fwd2.test",
    hostname: "relay.test",
  }, { resolver, clock });
}

/** A message signed at origin.test, then forwarded through fwd1.test (i=1) and fwd2.test (i=2). */
async function forwardedTwice(): Promise<string> {
  const signed = await dkimSigned(message("a@origin.test", "arc chain"), "origin.test", "sel", origin);
  const one = await arcSealed(
    signed,
    "fwd1.test",
    "arc",
    hop1,
    "fwd1.test; dkim=pass header.d=origin.test; spf=pass smtp.mailfrom=origin.test",
    "none",
  );
  return arcSealed(one, "fwd2.test", "arc", hop2, "fwd2.test; arc=pass; dkim=pass header.d=origin.test", "pass");
}

describe("inbound ARC (RFC 8617): chain validation", () => {
  test("no ARC headers: arc=none", async () => {
    const r = await check(message("a@origin.test"));
    assert.equal(r.arc.result, "none");
    assert.equal(r.arc.instance, 0);
    assert.match(r.authenticationResults, /\barc=none smtp\.remote-ip=192\.0\.2\.10$/);
  });

  test("a valid chain of one set passes", async () => {
    const signed = await dkimSigned(message("a@origin.test"), "origin.test", "sel", origin);
    const r = await check(
      await arcSealed(signed, "fwd1.test", "arc", hop1, "fwd1.test; dkim=pass header.d=origin.test", "none"),
    );
    assert.equal(r.arc.result, "pass");
    assert.equal(r.arc.instance, 1);
    assert.match(r.authenticationResults, /\barc=pass \(i=1\) smtp\.remote-ip=192\.0\.2\.10/);
  });

  test("a valid chain of two sets passes", async () => {
    const r = await check(await forwardedTwice());
    assert.equal(r.arc.result, "pass");
    assert.equal(r.arc.instance, 2);
    assert.equal(r.arc.sealable, true);
  });

  test("a broken chain fails: the body changed after the last seal", async () => {
    const r = await check((await forwardedTwice()).replace("Second line.", "Second line (edited by a list)."));
    assert.equal(r.arc.result, "fail");
    assert.equal(r.dkim[0]!.result, "fail");
    assert.match(r.authenticationResults, /\barc=fail \(i=2/);
    assert.equal(r.arc.sealable, true, "a failing chain whose last cv is pass may be sealed with cv=fail");
  });

  test("a broken chain fails: an earlier seal was tampered with", async () => {
    const text = await forwardedTwice();
    const tampered = text.replace(
      /(ARC-Seal: i=1;[\s\S]*?b=)(\S)/,
      (_m, head: string, c: string) => head + (c === "A" ? "B" : "A"),
    );
    assert.notEqual(tampered, text);
    const r = await check(tampered);
    assert.equal(r.arc.result, "fail");
  });

  test("a broken chain fails: a set is missing (i=2 without i=1)", async () => {
    const text = await forwardedTwice();
    const withoutFirst = text.replace(
      /^ARC-(Seal|Message-Signature|Authentication-Results): i=1;.*(\r\n[ \t].*)*\r\n/gm,
      "",
    );
    assert.doesNotMatch(withoutFirst, /i=1;/);
    const r = await check(withoutFirst);
    assert.equal(r.arc.result, "fail");
    assert.equal(r.arc.sealable, false, "a structurally broken chain is not sealed over");
  });
});

describe("ARC sealing (RFC 8617 5.1) with a key given by the caller", () => {
  const key = () => ({ domain: "relay.test", selector: "arc", privateKey: ours.privateKey });

  test("sealing a message without a chain starts one at i=1, and the result verifies", async () => {
    const original = await dkimSigned(message("a@origin.test"), "origin.test", "sel", origin);
    const first = await check(original);
    const value = first.authenticationResults.slice("Authentication-Results:".length).trim();
    const fields = await arcSeal(encode(original), { authResults: value, cv: "none" }, key(), { clock });
    assert.deepEqual(fields.map((f) => f.slice(0, f.indexOf(":"))), [
      "ARC-Seal",
      "ARC-Message-Signature",
      "ARC-Authentication-Results",
    ]);
    assert.match(fields[0]!, /^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=none; d=relay\.test; s=arc;/);
    assert.match(fields[2]!, /^ARC-Authentication-Results: i=1; relay\.test;/);
    const again = await check(fields.join("\r\n") + "\r\n" + original);
    assert.equal(again.arc.result, "pass");
    assert.equal(again.arc.instance, 1);
  });

  test("stamp(): removes forged results, prepends ours and an ARC set on top of an existing chain", async () => {
    const forged =
      "Authentication-Results: RELAY.test; dmarc=pass (forged)\r\nAuthentication-Results: upstream.example; spf=pass\r\n";
    const text = forged + (await forwardedTwice());
    const inbound = createInboundAuth({ resolver, clock, hostname: "relay.test", arcKey: async () => key() });
    const stamped = await inbound.stamp(encode(text), {
      clientIp: CLIENT,
      heloName: "fwd.example",
      mailFrom: "list@fwd2.test",
    });
    const out = decode(stamped.message);
    assert.equal(stamped.sealed, true);
    assert.doesNotMatch(out, /forged/);
    assert.match(out, /Authentication-Results: upstream\.example; spf=pass/, "another authserv-id's results stay");
    assert.match(out, /^ARC-Seal: i=3; a=rsa-sha256; t=\d+; cv=pass; d=relay\.test; s=arc;/);
    assert.match(out, /\r\nAuthentication-Results: relay\.test;\r\n\tspf=/);
    const next = await check(out);
    assert.equal(next.arc.result, "pass");
    assert.equal(next.arc.instance, 3);
    assert.equal(stamped.record.arc_sealed, true);
  });

  test("without a key nothing is sealed; with an Ed25519 key sealing is refused and the message goes on", async () => {
    const text = message("a@origin.test");
    const plain = await createInboundAuth({ resolver, clock, hostname: "relay.test" }).stamp(encode(text), {
      clientIp: CLIENT,
      mailFrom: "a@origin.test",
    });
    assert.equal(plain.sealed, false);
    assert.match(decode(plain.message), /^Authentication-Results: relay\.test;/);
    const warnings: string[] = [];
    const ed = ed25519Key();
    const refused = await createInboundAuth({
      resolver,
      clock,
      hostname: "relay.test",
      arcKey: async () => ({ domain: "relay.test", selector: "ed", privateKey: ed.privateKey }),
      log: (_level, msg, fields) => warnings.push(`${msg} ${String(fields.error)}`),
    }).stamp(encode(text), { clientIp: CLIENT, mailFrom: "a@origin.test" });
    assert.equal(refused.sealed, false);
    assert.doesNotMatch(decode(refused.message), /ARC-Seal/);
    assert.match(warnings.join("\n"), /needs an RSA key/);
  });
});
