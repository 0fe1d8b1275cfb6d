import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isSole } from "../../src/core/headroom.ts";
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

/**
 * DATA line-length verdict for `body` followed by the end of data, fed whole
 * and in every possible two-piece split; every way must give the same verdict.
 */
function dataLongLine(body: string, maxLineLength = 998): boolean {
  const all = bytes(`${body}.\r\n`);
  const verdicts = new Set<boolean>();
  for (let cut = 0; cut <= all.length; cut++) {
    const d = new DataReader(1 << 20, maxLineLength);
    const rest = d.push(all.subarray(0, cut)) ?? d.push(all.subarray(cut));
    assert.ok(rest !== undefined, `ended (cut at ${cut})`);
    verdicts.add(d.result().longLine);
  }
  assert.equal(verdicts.size, 1, "the verdict does not depend on where the input is split");
  return [...verdicts][0]!;
}

describe("BDAT framing (RFC 3030)", () => {
  it("parses BDAT arguments", () => {
    assert.deepEqual(parseBdat("0 LAST"), { size: 0, last: true });
    assert.deepEqual(parseBdat("1234"), { size: 1234, last: false });
    assert.deepEqual(parseBdat("12 last"), { size: 12, last: true });
    for (const bad of ["", "LAST", "-1", "1.5", "12 FIRST", "x 1", "1".repeat(16)]) {
      assert.equal(parseBdat(bad), undefined, bad);
    }
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

  it("joins the chunks once into a buffer with room in front, every octet of the message written", () => {
    const m = new MessageBuffer({ maxBytes: 10_000, maxLineLength: 998 });
    const parts = Array.from(
      { length: 40 },
      (_, i) => bytes(`${String.fromCharCode(65 + (i % 26)).repeat(i * 7 + 1)}\r\n`),
    );
    for (const part of parts) m.append(part);
    const joined = m.bytes();
    assert.equal(text(joined), parts.map(text).join(""));
    assert.ok(isSole(joined));
    assert.ok(joined.byteOffset > 0, "room in front for trace fields");
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

  it("measures a line inside a run of whole lines, fed whole and split at every position", () => {
    const around = (line: string) => `first\r\n${x(80)}\r\n${line}\r\n${x(80)}\r\nlast\r\n`;
    assert.equal(dataLongLine(around(x(998))), false);
    assert.equal(dataLongLine(around(x(999))), true);
    assert.equal(dataLongLine(`${x(998)}\r\n`), false); // the first line of DATA
    assert.equal(dataLongLine(`${x(999)}\r\n`), true);
    assert.equal(dataLongLine(`a\r\n${x(999)}\r\n`), true); // the last line before the end
    assert.equal(dataLongLine(`${x(10)}\r\n`, 10), false);
    assert.equal(dataLongLine(`${x(11)}\r\n`, 10), true);
  });

  it("measures the line after a dot-stuffed line, and the dot-stuffed line itself unstuffed", () => {
    assert.equal(dataLongLine(`..stuffed\r\n${x(998)}\r\nshort\r\n`), false);
    assert.equal(dataLongLine(`..stuffed\r\n${x(999)}\r\nshort\r\n`), true);
    assert.equal(dataLongLine(`a\r\n.${x(998)}\r\nb\r\n`), false); // 999 on the wire
    assert.equal(dataLongLine(`a\r\n..${x(997)}\r\nb\r\n`), false); // "." + 997 in the message
    assert.equal(dataLongLine(`a\r\n..${x(998)}\r\nb\r\n`), true); // "." + 998 in the message
  });

  it("measures across a bare CR as one line and ends a line at a bare LF", () => {
    assert.equal(dataLongLine(`a\r\n${x(500)}\r${x(497)}\r\nb\r\n`), false); // 998 with the CR
    assert.equal(dataLongLine(`a\r\n${x(500)}\r${x(498)}\r\nb\r\n`), true);
    assert.equal(dataLongLine(`a\r\n${x(900)}\n${x(900)}\r\nb\r\n`), false);
    assert.equal(dataLongLine(`a\r\n${x(900)}\n${x(999)}\r\nb\r\n`), true);
    assert.equal(dataLongLine(`a\r\n${x(997)}\r\r\nb\r\n`), false); // a CR before the CRLF is content
    assert.equal(dataLongLine(`a\r\n${x(998)}\r\r\nb\r\n`), true);
  });

  it("counts every line of a run, not only the first or the longest so far", () => {
    assert.equal(dataLongLine(`${x(900)}\r\n${x(950)}\r\n${x(999)}\r\n${x(10)}\r\n`), true);
    assert.equal(dataLongLine(`${x(999)}\r\n${x(10)}\r\n${x(20)}\r\n`), true);
    assert.equal(dataLongLine(`${x(998)}\r\n${x(998)}\r\n${x(998)}\r\n`), false);
  });

  it("takes whole lines measured by the caller, continuing the line already begun", () => {
    const m = new MessageBuffer({ maxBytes: 1 << 20, maxLineLength: 998 });
    m.append(bytes(x(500)));
    m.appendLines(bytes(`${x(498)}\r\n${x(998)}\r\n`), 498, 998);
    assert.equal(m.longLine, false);
    m.append(bytes(x(500)));
    m.appendLines(bytes(`${x(499)}\r\n`), 499, 0);
    assert.equal(m.longLine, true);
    const later = new MessageBuffer({ maxBytes: 1 << 20, maxLineLength: 998 });
    later.appendLines(bytes(`a\r\n${x(999)}\r\n`), 1, 999);
    assert.equal(later.longLine, true);
    assert.equal(later.size, 1004);
  });
});

describe("SASL (RFC 4954, RFC 4616)", () => {
  it("decodes strict base64 only", () => {
    assert.equal(text(decodeBase64("dXNlcg==")!), "user");
    assert.equal(decodeBase64("")?.length, 0);
    for (const bad of ["dXNlcg", "dXNlcg=", "dX Nlcg==", "dXNlch==", "!!!!", "dXNlcg==\r"]) {
      assert.equal(decodeBase64(bad), undefined, bad);
    }
  });

  it("splits PLAIN into authzid, authcid and password", () => {
    assert.deepEqual(parsePlain(bytes("\0user\0pw")), { authzid: "", authcid: "user", password: "pw" });
    assert.deepEqual(parsePlain(bytes("admin\0user\0pw")), { authzid: "admin", authcid: "user", password: "pw" });
    for (const bad of ["user\0pw", "\0\0pw", "\0user\0", "a\0b\0c\0d"]) {
      assert.equal(parsePlain(bytes(bad)), undefined, JSON.stringify(bad));
    }
    assert.equal(parsePlain(new Uint8Array([0, 0xff, 0, 0x41])), undefined);
  });

  it("reads cancel, the empty initial response and bad input", () => {
    assert.deepEqual(parseResponse("*", false), { kind: "cancel" });
    assert.deepEqual(parseResponse("=", true), { kind: "ok", bytes: new Uint8Array(0) });
    assert.deepEqual(parseResponse("=", false), { kind: "bad" });
    assert.deepEqual(parseResponse("not base64", false), { kind: "bad" });
  });
});
