import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkReader, parseBdat } from "../../src/smtp/protocol/chunk-reader.ts";
import { DataReader } from "../../src/smtp/protocol/data-reader.ts";
import { MessageBuffer } from "../../src/smtp/protocol/message-buffer.ts";
import { decodeBase64, parsePlain, parseResponse } from "../../src/smtp/protocol/sasl.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Line-length verdict for input fed in every possible two-piece split. */
function longLine(input: string, maxLineLength = 998): boolean {
  const all = bytes(input);
  const verdicts = new Set<boolean>();
  for (let cut = 0; cut <= all.length; cut++) {
    const m = new MessageBuffer({ maxBytes: 1 << 20, maxLineLength });
    m.append(all.subarray(0, cut));
    m.append(all.subarray(cut));
    verdicts.add(m.longLine);
  }
  assert.equal(verdicts.size, 1, "the verdict does not depend on how the input is split");
  return [...verdicts][0]!;
}

describe("BDAT framing (RFC 3030)", () => {
  it("parses BDAT arguments", () => {
    assert.deepEqual(parseBdat("0 LAST"), { size: 0, last: true });
    assert.deepEqual(parseBdat("1234"), { size: 1234, last: false });
    assert.deepEqual(parseBdat("12 last"), { size: 12, last: true });
    for (const bad of ["", "LAST", "-1", "1.5", "12 FIRST", "x 1", "1".repeat(16)]) assert.equal(parseBdat(bad), undefined, bad);
  });

  it("reads exactly the chunk size and hands back the rest", () => {
    const m = new MessageBuffer({ maxBytes: 100, maxLineLength: 998 });
    const r = new ChunkReader(7, m);
    assert.equal(r.push(bytes("ab\r")), undefined);
    const rest = r.push(bytes("\n.\r\nNOOP\r\n"));
    assert.equal(rest && text(rest), "NOOP\r\n");
    assert.equal(text(m.bytes()), "ab\r\n.\r\n"); // no dot-unstuffing, no end marker
    const zero = new ChunkReader(0, m);
    assert.equal(zero.push(new Uint8Array(0))?.length, 0);
  });

  it("counts past the size limit without storing, and drops a refused chunk", () => {
    const m = new MessageBuffer({ maxBytes: 4, maxLineLength: 998 });
    new ChunkReader(6, m).push(bytes("abcdef"));
    assert.deepEqual([m.size, m.overflow, text(m.bytes())], [6, true, "abcd"]);
    const dropped = new ChunkReader(3, undefined);
    assert.equal(text(dropped.push(bytes("xyzQUIT"))!), "QUIT");
  });
});

describe("message line length (RFC 5322 2.1.1)", () => {
  const x = (n: number) => "x".repeat(n);
  it("allows 998 octets before CRLF and refuses 999", () => {
    assert.equal(longLine(`${x(998)}\r\nshort\r\n`), false);
    assert.equal(longLine(`a\r\n${x(999)}\r\n`), true);
    assert.equal(longLine(x(998)), false); // last line without CRLF (BDAT)
    assert.equal(longLine(x(999)), true);
    assert.equal(longLine(`${x(997)}\r\r\n`), false); // a CR before the CRLF is content: 998
    assert.equal(longLine(`${x(998)}\r\r\n`), true);
  });

  it("ends a line at a bare LF (binary BDAT content) and can be turned off", () => {
    assert.equal(longLine(`${x(900)}\n${x(900)}\n`), false);
    assert.equal(longLine(`${x(5000)}\r\n`, Infinity), false);
  });

  it("measures DATA lines after dot-unstuffing", () => {
    const read = (body: string) => {
      const d = new DataReader(1 << 20, 998);
      assert.ok(d.push(bytes(body + "\r\n.\r\n")) !== undefined);
      return d.result().longLine;
    };
    assert.equal(read("." + x(998)), false); // 999 on the wire, 998 in the message
    assert.equal(read(x(999)), true);
  });
});

describe("SASL (RFC 4954, RFC 4616)", () => {
  it("decodes strict base64 only", () => {
    assert.equal(text(decodeBase64("dXNlcg==")!), "user");
    assert.equal(decodeBase64("")?.length, 0);
    for (const bad of ["dXNlcg", "dXNlcg=", "dX Nlcg==", "dXNlch==", "!!!!", "dXNlcg==\r"]) assert.equal(decodeBase64(bad), undefined, bad);
  });

  it("splits PLAIN into authzid, authcid and password", () => {
    assert.deepEqual(parsePlain(bytes("\0user\0pw")), { authzid: "", authcid: "user", password: "pw" });
    assert.deepEqual(parsePlain(bytes("admin\0user\0pw")), { authzid: "admin", authcid: "user", password: "pw" });
    for (const bad of ["user\0pw", "\0\0pw", "\0user\0", "a\0b\0c\0d"]) assert.equal(parsePlain(bytes(bad)), undefined, JSON.stringify(bad));
    assert.equal(parsePlain(new Uint8Array([0, 0xff, 0, 0x41])), undefined);
  });

  it("reads cancel, the empty initial response and bad input", () => {
    assert.deepEqual(parseResponse("*", false), { kind: "cancel" });
    assert.deepEqual(parseResponse("=", true), { kind: "ok", bytes: new Uint8Array(0) });
    assert.deepEqual(parseResponse("=", false), { kind: "bad" });
    assert.deepEqual(parseResponse("not base64", false), { kind: "bad" });
  });
});
