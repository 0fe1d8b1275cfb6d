import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import { encodeData, has8BitBytes } from "../../src/smtp/client/dot-stuff.ts";
import { mailParameters, parseExtensions } from "../../src/smtp/client/extensions.ts";
import { ReplyFormatError, ReplyReader } from "../../src/smtp/client/reply-reader.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("ReplyReader", () => {
  test("single-line reply with an enhanced code (RFC 3463)", () => {
    const [r] = new ReplyReader().push(bytes("550 5.1.1 no such user\r\n"));
    assert.deepEqual(r, { code: 550, enhanced: "5.1.1", lines: ["no such user"] });
  });

  test("multi-line reply split across chunks", () => {
    const reader = new ReplyReader();
    assert.deepEqual(reader.push(bytes("250-mx.example greets you\r\n250-PIPEL")), []);
    assert.equal(reader.pending, true);
    const [r] = reader.push(bytes("INING\r\n250 SIZE 1000\r\n"));
    assert.deepEqual(r, { code: 250, lines: ["mx.example greets you", "PIPELINING", "SIZE 1000"] });
    assert.equal(reader.pending, false);
  });

  test("several replies in one chunk (pipelining), bare code line, bare LF tolerated", () => {
    const replies = new ReplyReader().push(bytes("250 2.1.0 ok\r\n451-4.3.0 try\r\n451 4.3.0 later\n354\r\n"));
    assert.deepEqual(replies.map((r) => [r.code, r.enhanced, r.lines]), [
      [250, "2.1.0", ["ok"]],
      [451, "4.3.0", ["try", "later"]],
      [354, undefined, [""]],
    ]);
  });

  test("an enhanced code whose class disagrees with the reply is left in the text", () => {
    const [r] = new ReplyReader().push(bytes("250 5.1.1 odd\r\n"));
    assert.deepEqual(r, { code: 250, lines: ["5.1.1 odd"] });
  });

  test("garbage, code changes and oversized replies are errors", () => {
    assert.throws(() => new ReplyReader().push(bytes("hello\r\n")), ReplyFormatError);
    assert.throws(() => new ReplyReader().push(bytes("250-a\r\n251 b\r\n")), ReplyFormatError);
    assert.throws(
      () => new ReplyReader(100).push(bytes(`250-${"x".repeat(60)}\r\n250-${"x".repeat(60)}\r\n`)),
      ReplyFormatError,
    );
    assert.throws(() => new ReplyReader(100).push(bytes("2".repeat(200))), ReplyFormatError);
  });
});

describe("encodeData (RFC 5321 4.5.2)", () => {
  test("dot-stuffs line starts and appends the terminator", () => {
    assert.equal(
      text(encodeData(bytes(".hidden\r\nmid.dle\r\n..two\r\n.\r\n"))),
      "..hidden\r\nmid.dle\r\n...two\r\n..\r\n.\r\n",
    );
  });

  test("adds the final CRLF and normalises bare CR and LF", () => {
    assert.equal(text(encodeData(bytes("a\nb\rc\r\n.d"))), "a\r\nb\r\nc\r\n..d\r\n.\r\n");
    assert.equal(text(encodeData(bytes(""))), ".\r\n");
    assert.equal(text(encodeData(bytes("x"))), "x\r\n.\r\n");
  });

  test('with lineBreaks "crlf" only dot-stuffing and the terminator are added', () => {
    assert.equal(text(encodeData(bytes("a\r\nb\r\n"), "crlf")), "a\r\nb\r\n.\r\n");
    assert.equal(text(encodeData(bytes("a\r\n.b\r\n.\r\n"), "crlf")), "a\r\n..b\r\n..\r\n.\r\n");
    assert.equal(text(encodeData(bytes(".x"), "crlf")), "..x\r\n.\r\n");
    assert.equal(text(encodeData(bytes("x"), "crlf")), "x\r\n.\r\n");
  });

  test("has8BitBytes", () => {
    assert.equal(has8BitBytes(bytes("plain")), false);
    assert.equal(has8BitBytes(bytes("caf\u00e9")), true);
  });
});

describe("extensions", () => {
  const ext = parseExtensions({
    code: 250,
    lines: ["mx greets", "PIPELINING", "size 1000", "8BITMIME", "AUTH=LOGIN", "SMTPUTF8"],
  });

  test("parseExtensions upper-cases keywords and keeps parameters", () => {
    assert.deepEqual([...ext], [["PIPELINING", ""], ["SIZE", "1000"], ["8BITMIME", ""], ["AUTH", "LOGIN"], [
      "SMTPUTF8",
      "",
    ]]);
  });

  test("mailParameters adds SIZE, BODY and SMTPUTF8 only when needed and not given", () => {
    assert.deepEqual(mailParameters(ext, bytes("abc"), ["a@b"]), ["SIZE=3"]);
    assert.deepEqual(mailParameters(ext, bytes("\u00e9"), ["\u00e9@b"]), ["SIZE=2", "BODY=8BITMIME", "SMTPUTF8"]);
    assert.deepEqual(mailParameters(ext, bytes("abc"), ["a@b"], ["size=9", "ENVID=x"]), ["size=9", "ENVID=x"]);
    assert.deepEqual(mailParameters(new Map(), bytes("\u00e9"), ["a@b"]), []);
  });
});

describe("encodeData: the fast path for already-clean messages agrees with the byte-by-byte rules", () => {
  /** Reference: RFC 5321 4.5.2 on a string of lines (bare CR or LF become line ends). */
  function reference(bytes: Uint8Array): string {
    const text = Buffer.from(bytes).toString("latin1");
    const lines = text.split(/\r\n|\r|\n/);
    const endsWithBreak = /(\r\n|\r|\n)$/.test(text);
    if (endsWithBreak || text === "") lines.pop();
    return lines.map((l) => (l.startsWith(".") ? `.${l}` : l) + "\r\n").join("") + ".\r\n";
  }

  it("matches the reference on many random messages", () => {
    const alphabet = [97, 46, 13, 10, 10, 13];
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let n = 0; n < 2000; n++) {
      const length = Math.floor(random() * 12);
      const bytes = new Uint8Array(length);
      for (let i = 0; i < length; i++) bytes[i] = alphabet[Math.floor(random() * alphabet.length)]!;
      assert.equal(
        Buffer.from(encodeData(bytes)).toString("latin1"),
        reference(bytes),
        JSON.stringify(Buffer.from(bytes).toString("latin1")),
      );
    }
    const clean = new TextEncoder().encode("Subject: x\r\n\r\nline\r\nanother\r\n");
    assert.equal(Buffer.from(encodeData(clean)).toString("latin1"), "Subject: x\r\n\r\nline\r\nanother\r\n.\r\n");
  });
});
