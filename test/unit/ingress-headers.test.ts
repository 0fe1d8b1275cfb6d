import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { hasHeader, headerSectionEnd, prependHeaders } from "../../src/ingress/headers.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** Seeded (mulberry32), so that a failure can be replayed. */
function random(seed: number): (n: number) => number {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Short messages made of what header reading turns on: CR, LF, blanks, ":", "Date" in pieces and cases, a non-ASCII byte. */
function messages(seed: number, count: number): Uint8Array[] {
  const next = random(seed);
  const pieces = ["Date", "DATE", "date", "Da", "te", "-", ":", " ", "\t", "\r\n", "\r\n", "\r", "\n", "x", "\xc4"];
  return Array.from({ length: count }, () => {
    let text = "";
    for (let k = next(10); k >= 0; k--) text += pieces[next(pieces.length)];
    return Uint8Array.from(text, (c) => c.charCodeAt(0));
  });
}

describe("headerSectionEnd", () => {
  it("is the offset just after the blank line", () => {
    const m = "Subject: a\r\nFrom: b@x.test\r\n\r\nbody\r\n";
    assert.equal(headerSectionEnd(bytes(m)), m.indexOf("body"));
  });

  it("finds the first blank line, not a later one in the body", () => {
    const m = "Subject: a\r\n\r\npara 1\r\n\r\npara 2\r\n";
    assert.equal(headerSectionEnd(bytes(m)), "Subject: a\r\n\r\n".length);
  });

  it("a blank line at the very end (no body) ends the section at the length", () => {
    const m = bytes("Subject: a\r\n\r\n");
    assert.equal(headerSectionEnd(m), m.length);
  });

  it("no blank line at all: the whole message is header", () => {
    assert.equal(headerSectionEnd(bytes("Subject: a\r\nFrom: b@x.test\r\n")), "Subject: a\r\nFrom: b@x.test\r\n".length);
    assert.equal(headerSectionEnd(bytes("Subject: a")), 10);
    assert.equal(headerSectionEnd(bytes("")), 0);
  });

  it("a message that starts with the blank line has an empty header section", () => {
    assert.equal(headerSectionEnd(bytes("\r\nSubject: in the body\r\n")), 2);
    assert.equal(headerSectionEnd(bytes("\r\n")), 2);
  });

  it("is the first CRLF CRLF found byte by byte", () => {
    const byteByByte = (m: Uint8Array) => {
      if (m[0] === 13 && m[1] === 10) return 2;
      for (let i = 0; i + 3 < m.length; i++) if (m[i] === 13 && m[i + 1] === 10 && m[i + 2] === 13 && m[i + 3] === 10) return i + 4;
      return m.length;
    };
    for (const m of messages(1, 20_000)) assert.equal(headerSectionEnd(m), byteByByte(m), JSON.stringify(str(m)));
  });

  it("bare LFs do not end the header section", () => {
    const m = bytes("Subject: a\n\nbody\r\n\r\nrest");
    assert.equal(headerSectionEnd(m), "Subject: a\n\nbody\r\n\r\n".length);
  });
});

describe("hasHeader", () => {
  const msg = bytes("Received: by x\r\nSUBJECT: hi\r\nmessage-id : <1@x>\r\nX-Folded: a\r\n Date: not a field\r\n\r\nDate: in the body\r\nFrom: body\r\n");

  it("is case-insensitive on the field name and allows space before the colon", () => {
    assert.ok(hasHeader(msg, "Subject"));
    assert.ok(hasHeader(msg, "subject"));
    assert.ok(hasHeader(msg, "Message-ID"));
    assert.ok(hasHeader(msg, "received"), "the first line counts");
  });

  it("does not match text of the body", () => {
    assert.ok(!hasHeader(msg, "Date"));
    assert.ok(!hasHeader(msg, "From"));
  });

  it("does not match a continuation line or a longer field name", () => {
    assert.ok(!hasHeader(msg, "Date"), "' Date:' is a folded continuation");
    assert.ok(!hasHeader(msg, "X"));
    assert.ok(!hasHeader(msg, "Message"));
    assert.ok(!hasHeader(bytes("X-Subject: a\r\n\r\n"), "Subject"));
  });

  it("works without a body and without a blank line", () => {
    assert.ok(hasHeader(bytes("Date: now\r\n"), "date"));
    assert.ok(hasHeader(bytes("Date: now"), "date"));
    assert.ok(hasHeader(bytes("Date: now\r\n\r\n"), "DATE"));
  });

  it("an empty header section has no fields", () => {
    assert.ok(!hasHeader(bytes("\r\nDate: now\r\n"), "Date"));
  });

  it("agrees with the pattern /(^|\\r\\n)name[ \\t]*:/i over the header section", () => {
    const byPattern = (m: Uint8Array, name: string) =>
      new RegExp(`(^|\\r\\n)${name}[ \\t]*:`, "i").test(new TextDecoder("latin1").decode(m.subarray(0, headerSectionEnd(m))));
    let found = 0;
    for (const m of messages(2, 20_000)) {
      for (const name of ["Date", "DATE", "D", "Da-te"]) {
        const expected = byPattern(m, name);
        if (expected) found++;
        assert.equal(hasHeader(m, name), expected, `${name} in ${JSON.stringify(str(m))}`);
      }
    }
    assert.ok(found > 500, `only ${found} of the cases have the field`);
  });
});

describe("prependHeaders", () => {
  it("adds CRLF-terminated lines before the message, and is a no-op without lines", () => {
    const m = bytes("Subject: a\r\n\r\nbody");
    assert.equal(str(prependHeaders(m, ["Received: from x", "X-A: 1"])), "Received: from x\r\nX-A: 1\r\nSubject: a\r\n\r\nbody");
    assert.equal(prependHeaders(m, []), m);
  });

  it("respects a message that is a view into a larger buffer", () => {
    const big = bytes("JUNKSubject: a\r\n\r\nbodyJUNK");
    const view = big.subarray(4, big.length - 4);
    assert.equal(str(prependHeaders(view, ["X: 1"])), "X: 1\r\nSubject: a\r\n\r\nbody");
  });
});
