import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DataReader } from "../../src/smtp/protocol/data-reader.ts";
import { LineReader, type LineEvent } from "../../src/smtp/protocol/line-reader.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function lines(input: string[], max = 512): string[] {
  const r = new LineReader(max);
  const out: string[] = [];
  for (const chunk of input) {
    r.push(bytes(chunk));
    for (let e: LineEvent | undefined; (e = r.next()); ) out.push(e.kind === "line" ? text(e.bytes) : `<${e.kind}>`);
  }
  return out;
}

/** Feed the input split at every position; every split must give the same result. */
function everySplit(input: string, maxBytes: number, check: (message: string, rest: string, r: ReturnType<DataReader["result"]>) => void) {
  const all = bytes(input);
  for (let cut = 0; cut <= all.length; cut++) {
    const d = new DataReader(maxBytes);
    let rest = d.push(all.subarray(0, cut));
    if (rest === undefined) rest = d.push(all.subarray(cut));
    else rest = new Uint8Array([...rest, ...all.subarray(cut)]);
    assert.ok(rest !== undefined, `ended (cut at ${cut})`);
    const r = d.result();
    check(text(r.message), text(rest), r);
  }
}

describe("LineReader", () => {
  it("splits only at CRLF, across chunk boundaries", () => {
    assert.deepEqual(lines(["EHLO a\r", "\nNOOP\r\nQU", "IT\r\n"]), ["EHLO a", "NOOP", "QUIT"]);
    assert.deepEqual(lines(["\r\n"]), [""]);
  });

  it("never ends a line at a bare LF or CR", () => {
    assert.deepEqual(lines(["NOOP\nMAIL FROM:<a@b>\r\nRSET\r\n"]), ["<bare-eol>", "RSET"]);
    assert.deepEqual(lines(["NOOP\rRSET\r\n"]), ["<bare-eol>"]);
    assert.deepEqual(lines(["NOOP\n"]), []);
  });

  it("enforces the length limit including CRLF and recovers at the next CRLF", () => {
    assert.deepEqual(lines(["x".repeat(510) + "\r\n"]), ["x".repeat(510)]);
    assert.deepEqual(lines(["x".repeat(511) + "\r\nNOOP\r\n"]), ["<too-long>", "NOOP"]);
    // Dropped in pieces: the buffer never holds more than the limit.
    const r = new LineReader(512);
    for (let i = 0; i < 100; i++) {
      r.push(bytes("y".repeat(1000)));
      assert.equal(r.next(), undefined);
      assert.ok(r.buffered <= 512);
    }
    r.push(bytes("\r\nNOOP\r\n"));
    assert.deepEqual(r.next(), { kind: "too-long" });
    assert.equal(text((r.next() as { bytes: Uint8Array }).bytes), "NOOP");
  });
});

describe("DataReader (RFC 5321 4.1.1.4, 4.5.2)", () => {
  it("ends at CRLF.CRLF and returns the pipelined rest", () => {
    everySplit("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", 1000, (message, rest, r) => {
      assert.equal(message, "Subject: x\r\n\r\nbody\r\n");
      assert.equal(rest, "QUIT\r\n");
      assert.equal(r.bareEol, false);
      assert.equal(r.size, message.length);
    });
  });

  it("accepts an empty message", () => {
    everySplit(".\r\n", 10, (message, rest) => assert.deepEqual([message, rest], ["", ""]));
  });

  it("removes dot-stuffing", () => {
    everySplit("..a\r\n.\r.x\r\n..\r\n.\r\n", 1000, (message, _rest, r) => {
      assert.equal(message, ".a\r\n\r.x\r\n.\r\n");
      assert.equal(r.bareEol, true); // ".\r." held a bare CR
    });
    everySplit("...\r\nb.\r\n.\r\n", 1000, (message, _rest, r) => {
      assert.equal(message, "..\r\nb.\r\n");
      assert.equal(r.bareEol, false);
    });
  });

  it("does not end at bare LF or CR variants of the terminator, and flags them", () => {
    for (const smuggled of ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r"]) {
      const input = `a${smuggled}MAIL FROM:<x@y>\r\n.\r\nNEXT`;
      everySplit(input, 1000, (message, rest, r) => {
        assert.ok(message.includes("MAIL FROM:<x@y>"), `${JSON.stringify(smuggled)} stays inside the message`);
        assert.equal(rest, "NEXT");
        assert.equal(r.bareEol, true);
      });
    }
  });

  it("counts past the limit without storing", () => {
    const d = new DataReader(10);
    assert.equal(d.push(bytes("0123456789ABCDEF\r\n")), undefined);
    const rest = d.push(bytes(".\r\n"));
    assert.deepEqual(rest && text(rest), "");
    const r = d.result();
    assert.equal(r.size, 18);
    assert.equal(r.overflow, true);
    assert.equal(r.message.length, 10);
  });

  it("is not over the limit at exactly maxBytes", () => {
    everySplit("12345678\r\n.\r\n", 10, (message, _rest, r) => {
      assert.equal(message, "12345678\r\n");
      assert.equal(r.overflow, false);
    });
  });
});
