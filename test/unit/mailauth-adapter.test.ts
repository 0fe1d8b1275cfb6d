/**
 * What src/auth/mailauth.ts relies on in mailauth's internals. An upgrade
 * that moves or changes any of it fails here, loudly, before it can change
 * an SPF, DMARC or DKIM key answer in production.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { generateKeyPairSync } from "node:crypto";
import {
  checkSpf,
  evaluateDmarc,
  getDmarcRecord,
  getPublicKey,
  MAILAUTH_VERSION,
  sameOrganization,
} from "../../src/auth/mailauth.ts";
import { mailauthResolver } from "../../src/auth/mailauth-resolver.ts";
import { createDnsClient } from "../../src/dns/client.ts";
import { createResolver } from "../../src/dns/resolver.ts";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";

const root = new URL("../../", import.meta.url);
const ed25519 = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "der" }).subarray(12);
const shortRsa = generateKeyPairSync("rsa", { modulusLength: 512 }).publicKey.export({ type: "spki", format: "der" });

let dns: DnsServer;
let resolver: ReturnType<typeof mailauthResolver>;
before(async () => {
  dns = await startDnsServer({
    "sender.test": { TXT: ["v=spf1 ip4:192.0.2.1 -all"] },
    "_dmarc.sender.test": { TXT: ["v=DMARC1; p=reject; adkim=s"] },
    "ed._domainkey.sender.test": { TXT: [`v=DKIM1; k=ed25519; p=${ed25519.toString("base64")}`] },
    "short._domainkey.sender.test": { TXT: [`v=DKIM1; k=rsa; p=${shortRsa.toString("base64")}`] },
  });
  resolver = mailauthResolver(createResolver(createDnsClient({ servers: [dns], attempts: 1 })));
});
after(() => dns.close());

describe("mailauth internals behind src/auth/mailauth.ts", () => {
  test("the installed mailauth is the pinned one the adapter was written for", () => {
    const installed = JSON.parse(readFileSync(new URL("node_modules/mailauth/package.json", root), "utf8"));
    const manifest = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
    assert.equal(installed.version, MAILAUTH_VERSION, "update src/auth/mailauth.ts and its types with mailauth");
    assert.equal(manifest.dependencies.mailauth, MAILAUTH_VERSION, "package.json pins mailauth exactly");
  });

  test("organizational-domain alignment follows the public suffix list", () => {
    assert.equal(sameOrganization("news.example.co.uk", "bounces.example.co.uk"), true);
    assert.equal(sameOrganization("Example.TEST", "bounces.example.test"), true);
    assert.equal(sameOrganization("example.co.uk", "other.co.uk"), false);
  });

  test("SPF answers with the domain, the record and a status", async () => {
    const pass = await checkSpf({ sender: "a@sender.test", ip: "192.0.2.1", helo: "h.test", mta: "mx.test", resolver });
    assert.equal(pass.status.result, "pass");
    assert.equal(pass.domain, "sender.test");
    assert.equal(pass.rr, "v=spf1 ip4:192.0.2.1 -all");
    const fail = await checkSpf({ sender: "a@sender.test", ip: "192.0.2.9", mta: "mx.test", resolver });
    assert.equal(fail.status.result, "fail");
  });

  test("DMARC: the record, its policy and the alignment answer", async () => {
    const record = await getDmarcRecord("sender.test", resolver);
    assert.ok(record);
    assert.equal(record.p, "reject");
    const answer = await evaluateDmarc({
      headerFrom: "postmaster@sender.test",
      spfDomains: ["sender.test"],
      dkimDomains: [],
      resolver,
    });
    assert.ok(answer);
    assert.equal(answer.status.result, "pass");
    assert.equal(answer.p, "reject");
    assert.equal(answer.rr, "v=DMARC1; p=reject; adkim=s");
    assert.equal(answer.alignment?.dkim.strict, true);
    assert.equal(answer.alignment?.spf.strict, false);
    assert.equal(answer.alignment?.spf.result, "sender.test");
  });

  test("the DKIM key record: the key, and the error codes the relay maps", async () => {
    const found = await getPublicKey("DKIM", "ed._domainkey.sender.test", 1024, resolver);
    assert.match(found.publicKey.toString(), /BEGIN PUBLIC KEY/);
    const codeOf = (name: string) =>
      getPublicKey("DKIM", name, 1024, resolver).then(() => "none", (error) => (error as { code?: string }).code);
    assert.equal(await codeOf("short._domainkey.sender.test"), "ESHORTKEY");
    assert.match(String(await codeOf("none._domainkey.sender.test")), /^(ENOTFOUND|ENODATA)$/);
  });
});
