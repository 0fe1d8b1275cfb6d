import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { describe, it } from "node:test";
import {
  defaultSelector,
  dkimRecordName,
  dkimTxtRecord,
  generateDkimKey,
  matchDkimRecord,
  parseTagList,
  publicKeyOf,
  selectorProblem,
} from "../../src/auth/dkim-keys.ts";

describe("DKIM keys", () => {
  it("makes RSA-2048 keys published as base64 SPKI DER", () => {
    const key = generateDkimKey("rsa");
    assert.match(key.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const spki = createPublicKey({ key: Buffer.from(key.publicKey, "base64"), format: "der", type: "spki" });
    assert.equal(spki.asymmetricKeyType, "rsa");
    assert.equal(spki.asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(publicKeyOf("rsa", key.privateKeyPem), key.publicKey, "the p= value belongs to the private key");
    assert.equal(dkimTxtRecord("rsa", key.publicKey), `v=DKIM1; k=rsa; p=${key.publicKey}`);
  });

  it("publishes Ed25519 keys as the raw 32-byte key, not the SPKI (RFC 8463 4.2)", () => {
    const key = generateDkimKey("ed25519");
    const raw = Buffer.from(key.publicKey, "base64");
    assert.equal(raw.length, 32);
    const jwk = createPublicKey(createPrivateKey(key.privateKeyPem)).export({ format: "jwk" });
    assert.equal(raw.toString("base64url"), jwk.x, "the same bytes as the key's x coordinate");
    assert.equal(dkimTxtRecord("ed25519", key.publicKey), `v=DKIM1; k=ed25519; p=${key.publicKey}`);
    assert.equal(key.publicKey.length, 44);
  });

  it("names the record <selector>._domainkey.<domain>", () => {
    assert.equal(dkimRecordName("s1", "example.com"), "s1._domainkey.example.com");
  });

  it("matches a published record against our key", () => {
    const key = generateDkimKey("ed25519");
    const published = `v=DKIM1; k=ed25519; p=${key.publicKey.slice(0, 20)} ${key.publicKey.slice(20)}`;
    assert.deepEqual(
      matchDkimRecord(published, "ed25519", key.publicKey),
      { match: true },
      "whitespace in p= is folding",
    );
    assert.equal(matchDkimRecord(`v=DKIM1; k=rsa; p=${key.publicKey}`, "ed25519", key.publicKey).match, false);
    assert.equal(matchDkimRecord(`p=${key.publicKey}`, "rsa", key.publicKey).match, true, "k= defaults to rsa");
    assert.deepEqual(matchDkimRecord("v=DKIM1; p=", "rsa", "x"), {
      match: false,
      reason: "p= is empty: the key is revoked",
    });
    assert.equal(matchDkimRecord("v=DKIM1; k=rsa; p=AAAA", "rsa", "BBBB").match, false);
    assert.deepEqual([...parseTagList(" V = DKIM1 ;k=rsa; p = a b ")], [["v", "DKIM1"], ["k", "rsa"], ["p", "ab"]]);
  });

  it("picks dated default selectors, unique per domain", () => {
    const now = Date.UTC(2026, 4, 18);
    assert.equal(defaultSelector("rsa", now, new Set()), "rsa20260518");
    assert.equal(defaultSelector("ed25519", now, new Set()), "ed20260518");
    assert.equal(defaultSelector("rsa", now, new Set(["rsa20260518"])), "rsa20260518b");
    assert.equal(defaultSelector("rsa", now, new Set(["rsa20260518", "rsa20260518b"])), "rsa20260518c");
  });

  it("accepts selectors that are DNS labels only", () => {
    assert.equal(selectorProblem("s2026"), undefined);
    assert.equal(selectorProblem("mail.s1"), undefined);
    assert.match(selectorProblem("bad selector") ?? "", /not valid/);
    assert.match(selectorProblem("-x") ?? "", /not valid/);
    assert.match(selectorProblem("") ?? "", /not valid/);
  });
});
