// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { describe, it } from "node:test";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { type DkimAlgorithm, generateDkimKey, parseTagList } from "../../src/auth/dkim-keys.ts";
import { existingSignatures, type SigningKey, signMessage } from "../../src/auth/dkim-sign.ts";
import { headerValues } from "../../src/core/header-section.ts";

const NOW = Date.UTC(2026, 4, 18, 12);

function makeKey(algorithm: DkimAlgorithm, selector: string, domain = "sender.test") {
  const generated = generateDkimKey(algorithm);
  const key: SigningKey = { domain, selector, algorithm, privateKey: createPrivateKey(generated.privateKeyPem) };
  return { key, txt: `v=DKIM1; k=${algorithm}; p=${generated.publicKey}` };
}

const rsa = makeKey("rsa", "r1");
const ed = makeKey("ed25519", "e1");
const zone = new Map([
  ["r1._domainkey.sender.test", rsa.txt],
  ["e1._domainkey.sender.test", ed.txt],
]);

async function verify(message: Uint8Array | string) {
  const result = await dkimVerify(Buffer.from(message), {
    resolver: async (name: string) => {
      const txt = zone.get(name);
      if (txt === undefined) throw Object.assign(new Error(`no ${name}`), { code: "ENOTFOUND" });
      return [[txt]];
    },
  });
  return result.results.map((r: any) => `${r.selector}:${r.status.result}`);
}

function signatureTags(message: Uint8Array): Map<string, string>[] {
  return headerValues(message, "dkim-signature").map((value) => parseTagList(value));
}

const text = (s: string) => new TextEncoder().encode(s);

const FULL = text(
  "Received: from x by y; Mon, 18 May 2026 12:00:00 +0000\r\n" +
    "From: Alice <alice@sender.test>\r\n" +
    "To: bob@dest.test\r\n" +
    "Cc: carol@dest.test\r\n" +
    "Reply-To: replies@sender.test\r\n" +
    "Subject: hello\r\n" +
    "Date: Mon, 18 May 2026 12:00:00 +0000\r\n" +
    "Message-ID: <1@sender.test>\r\n" +
    "MIME-Version: 1.0\r\n" +
    "Content-Type: text/plain; charset=utf-8\r\n" +
    "List-Unsubscribe: <mailto:unsub@sender.test>\r\n" +
    "X-Mailer: test\r\n" +
    "\r\n" +
    "body\r\n",
);

describe("DKIM signing", () => {
  it("signs the listed headers present, over-signs From and Subject, relaxed/relaxed, SHA-256, no l=", async () => {
    const signed = await signMessage(FULL, [rsa.key], NOW);
    const [tags] = signatureTags(signed);
    assert.ok(tags);
    const h = tags.get("h")!.split(":");
    assert.deepEqual(h, [
      "From",
      "To",
      "Cc",
      "Subject",
      "Date",
      "Message-ID",
      "Reply-To",
      "MIME-Version",
      "Content-Type",
      "List-Unsubscribe",
      "From",
      "Subject",
    ]);
    assert.equal(tags.get("a"), "rsa-sha256");
    assert.equal(tags.get("c"), "relaxed/relaxed");
    assert.equal(tags.get("d"), "sender.test");
    assert.equal(tags.get("s"), "r1");
    assert.equal(tags.get("t"), String(NOW / 1000));
    assert.equal(tags.has("l"), false, "no body length limit");
    assert.deepEqual(await verify(signed), ["r1:pass"]);
  });

  it("lists every instance of a duplicated header, and only the headers present", async () => {
    const message = text("From: a@sender.test\r\nTo: x@dest.test\r\nTo: y@dest.test\r\nSubject: s\r\n\r\nb\r\n");
    const signed = await signMessage(message, [rsa.key], NOW);
    assert.equal(signatureTags(signed)[0]!.get("h"), "From:To:To:Subject:From:Subject");
    assert.deepEqual(await verify(signed), ["r1:pass"]);
  });

  it("an added From or Subject breaks the signature; other added headers do not", async () => {
    const signed = Buffer.from(await signMessage(FULL, [rsa.key], NOW));
    const end = signed.indexOf("\r\n\r\n");
    const addAbove = (field: string) => Buffer.concat([Buffer.from(`${field}\r\n`), signed]);
    const addBelow = (field: string) =>
      Buffer.concat([signed.subarray(0, end + 2), Buffer.from(`${field}\r\n`), signed.subarray(end + 2)]);
    assert.deepEqual(await verify(addAbove("From: mallory@evil.test")), ["r1:fail"]);
    assert.deepEqual(await verify(addBelow("From: mallory@evil.test")), ["r1:fail"]);
    assert.deepEqual(await verify(addAbove("Subject: urgent")), ["r1:fail"]);
    assert.deepEqual(await verify(addAbove("X-Spam-Score: 0")), ["r1:pass"]);
  });

  it("signs with Ed25519 beside RSA (two signatures)", async () => {
    const signed = await signMessage(FULL, [rsa.key, ed.key], NOW);
    assert.deepEqual(signatureTags(signed).map((t) => t.get("a")), ["rsa-sha256", "ed25519-sha256"]);
    assert.deepEqual(await verify(signed), ["r1:pass", "e1:pass"]);
  });

  it("does not sign twice with the same d= and s=", async () => {
    const once = await signMessage(FULL, [rsa.key], NOW);
    const twice = await signMessage(once, [rsa.key], NOW + 1000);
    assert.equal(Buffer.compare(Buffer.from(once), Buffer.from(twice)), 0);
    const both = await signMessage(once, [rsa.key, ed.key], NOW);
    assert.equal(signatureTags(both).length, 2, "only the missing selector is added");
    assert.deepEqual(existingSignatures(both), new Set(["sender.test r1", "sender.test e1"]));
    const other = makeKey("rsa", "r1", "other.test");
    const foreign = await signMessage(once, [other.key], NOW);
    assert.equal(signatureTags(foreign).length, 2, "another domain's signature with the same selector is not ours");
  });

  it("signs messages without a body, without a final CRLF, with 8-bit UTF-8", async () => {
    for (
      const raw of [
        "From: a@sender.test\r\nSubject: no body\r\n",
        "From: a@sender.test\r\nSubject: no body, no CRLF",
        "From: a@sender.test\r\nSubject: x\r\n\r\nlast line without CRLF",
        "From: a@sender.test\r\nSubject: trailing\r\n\r\nbody  \t\r\n\r\n\r\n\r\n",
        "From: Jöran <jöran@sender.test>\r\nSubject: grüße\r\n\r\nüber 8-bit\r\n",
      ]
    ) {
      const signed = await signMessage(text(raw), [rsa.key], NOW);
      assert.equal(signatureTags(signed).length, 1, raw);
      // What a receiver sees: the SMTP client ends the data with CRLF. mailauth's verifier (like its
      // signer) needs the empty line after the header section; dkimpy does not (see test/e2e/dkim-verify).
      let wire = Buffer.from(signed).toString("latin1");
      if (!wire.endsWith("\r\n")) wire += "\r\n";
      if (!wire.includes("\r\n\r\n")) wire += "\r\n";
      assert.deepEqual(await verify(Buffer.from(wire, "latin1")), ["r1:pass"], raw);
    }
  });
});
