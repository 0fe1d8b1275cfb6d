import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hasDotLine, hasOnlyCrlf, toCrlf } from "../../src/core/crlf.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("CRLF line breaks (the queue's form)", () => {
  it("hasOnlyCrlf finds a bare CR or LF anywhere", () => {
    assert.equal(hasOnlyCrlf(bytes("a\r\nb\r\n")), true);
    assert.equal(hasOnlyCrlf(bytes("")), true);
    for (const bad of ["\n", "\r", "a\nb\r\n", "a\r\nb\r", "a\r\rb\n", "\n\r"]) {
      assert.equal(hasOnlyCrlf(bytes(bad)), false, JSON.stringify(bad));
    }
  });

  it("toCrlf turns every bare CR and LF into CRLF and returns a clean message as it is", () => {
    assert.equal(text(toCrlf(bytes("a\nb\rc\r\nd\n\re"))), "a\r\nb\r\nc\r\nd\r\n\r\ne");
    const clean = bytes("a\r\nb\r\n");
    assert.equal(toCrlf(clean), clean);
    assert.equal(text(toCrlf(bytes("caf\u00e9\n"))), "caf\u00e9\r\n", "8-bit octets pass unchanged");
  });

  it("toCrlf works on a view into a larger buffer", () => {
    const whole = bytes("xxa\nbyy");
    assert.equal(text(toCrlf(whole.subarray(2, 5))), "a\r\nb");
  });

  it("hasDotLine sees a dot at the start of the message or of any line", () => {
    assert.equal(hasDotLine(bytes(".a")), true);
    assert.equal(hasDotLine(bytes("a\r\n.b")), true);
    assert.equal(hasDotLine(bytes("a.b\r\nc.\r\n")), false);
    assert.equal(hasDotLine(bytes("xx\r\n.y").subarray(0, 4)), false, "a view ends where it ends");
  });
});
