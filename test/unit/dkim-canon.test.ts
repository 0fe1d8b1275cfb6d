import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { bodyHash, ByteSink, relaxedHeader, signatureHeader, simpleHeader } from "../../src/auth/dkim-canon.ts";
import { splitMessage } from "../../src/core/header-section.ts";

const octets = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");
const utf8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

function headers(message: string, form: "relaxed" | "simple"): string {
  const bytes = octets(message);
  const out = new ByteSink(8);
  for (const field of splitMessage(bytes).fields) {
    (form === "relaxed" ? relaxedHeader : simpleHeader)(bytes, field, out);
  }
  return text(out.bytes());
}

const sha256 = (canonical: string) => createHash("sha256").update(Buffer.from(canonical, "latin1")).digest("base64");
function hashOfBody(message: string, form: "relaxed" | "simple"): string {
  const bytes = octets(message);
  return bodyHash(bytes, splitMessage(bytes).bodyStart, form, "sha256");
}

describe("DKIM canonicalization on octets (RFC 6376 3.4)", () => {
  // RFC 6376 3.4.5, the example.
  const example = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";

  it("the RFC's example: relaxed and simple header fields", () => {
    assert.equal(headers(example, "relaxed"), "a:X\r\nb:Y Z\r\n");
    assert.equal(headers(example, "simple"), "A: X\r\nB : Y\t\r\n\tZ  \r\n");
  });

  it("the RFC's example: relaxed and simple bodies", () => {
    assert.equal(hashOfBody(example, "relaxed"), sha256(" C\r\nD E\r\n"));
    assert.equal(hashOfBody(example, "simple"), sha256(" C \r\nD \t E\r\n"));
  });

  it("keeps the octets 0xA0 and 0x85 inside UTF-8 characters, and U+00A0 and U+0085 themselves", () => {
    const value = utf8("à Р  Π\t蠀 Å \u00a0 \u0085");
    assert.equal(headers(`Subject: ${value}\r\n\r\n`, "relaxed"), `subject:${utf8("à Р Π 蠀 Å \u00a0 \u0085")}\r\n`);
    assert.equal(
      hashOfBody(`S: x\r\n\r\n${value}  \r\n`, "relaxed"),
      sha256(`${utf8("à Р Π 蠀 Å \u00a0 \u0085")}\r\n`),
    );
  });

  it("keeps VT and FF, which are not WSP, also at the ends of a value (dkimpy strips them there)", () => {
    assert.equal(headers("Subject: \x0bX \x0c\r\n \x0c\r\n\r\n", "relaxed"), "subject:\x0bX \x0c \x0c\r\n");
    assert.equal(hashOfBody("S: x\r\n\r\n\x0b a\x0c \r\n\x0c\r\n", "relaxed"), sha256("\x0b a\x0c\r\n\x0c\r\n"));
  });

  it("bodies: empty, only empty lines, no final CRLF, trailing WSP on the last line, a bare LF", () => {
    assert.equal(hashOfBody("S: x\r\n\r\n", "relaxed"), sha256(""));
    assert.equal(hashOfBody("S: x\r\n\r\n", "simple"), sha256("\r\n"));
    assert.equal(hashOfBody("S: x\r\n", "simple"), sha256("\r\n"), "no empty line: no body");
    assert.equal(hashOfBody("S: x\r\n\r\n\r\n \t\r\n", "relaxed"), sha256(""));
    assert.equal(hashOfBody("S: x\r\n\r\n\r\n\r\n", "simple"), sha256("\r\n"));
    assert.equal(hashOfBody("S: x\r\n\r\nabc", "simple"), sha256("abc\r\n"));
    assert.equal(hashOfBody("S: x\r\n\r\nabc \t ", "relaxed"), sha256("abc\r\n"));
    assert.equal(hashOfBody("S: x\r\n\r\na\nb\r\n", "relaxed"), sha256("a\r\nb\r\n"));
  });

  it("l= counts canonical octets", () => {
    const bytes = octets("S: x\r\n\r\nabc  def\r\n");
    assert.equal(bodyHash(bytes, splitMessage(bytes).bodyStart, "relaxed", "sha256", 5), sha256("abc d"));
  });

  it("the signature field without its b= value and the WSP around it, no final CRLF", () => {
    const bytes = octets("DKIM-Signature: v=1; bh=AB\r\n C=; b= 12\r\n 34== ; d=x.test\r\n\r\n");
    const [field] = splitMessage(bytes).fields;
    const relaxed = new ByteSink(8);
    signatureHeader("relaxed", bytes, field!, relaxed);
    assert.equal(text(relaxed.bytes()), "dkim-signature:v=1; bh=AB C=; b=; d=x.test");
    const simple = new ByteSink(8);
    signatureHeader("simple", bytes, field!, simple);
    assert.equal(text(simple.bytes()), "DKIM-Signature: v=1; bh=AB\r\n C=; b=; d=x.test");
  });
});
