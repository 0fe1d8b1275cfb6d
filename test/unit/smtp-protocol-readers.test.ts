import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DataReader } from "../../src/smtp/protocol/data-reader.ts";
import { type LineEvent, LineReader } from "../../src/smtp/protocol/line-reader.ts";

const CR = 13;
const LF = 10;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function lines(input: string[], max = 512): string[] {
  const r = new LineReader(max);
  const out: string[] = [];
  for (const chunk of input) {
    r.push(bytes(chunk));
    for (let e: LineEvent | undefined; (e = r.next());) out.push(e.kind === "line" ? text(e.bytes) : `<${e.kind}>`);
  }
  return out;
}

/** Feed the input split at every position; every split must give the same result. */
function everySplit(
  input: string,
  maxBytes: number,
  check: (message: string, rest: string, r: ReturnType<DataReader["result"]>) => void,
) {
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

const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((part) => [...part]));

/** Read DATA given as raw octets, split in two at `cut`; the reader must end. */
function readSplit(all: Uint8Array, cut: number): { result: ReturnType<DataReader["result"]>; rest: Uint8Array } {
  const d = new DataReader(1 << 20, 998);
  const first = d.push(all.subarray(0, cut));
  const rest = first === undefined ? d.push(all.subarray(cut)) : concat(first, all.subarray(cut));
  assert.ok(rest !== undefined, `ended (cut at ${cut})`);
  return { result: d.result(), rest };
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

  it("ends at CRLF.CRLF after a run of whole lines, wherever the chunks split", () => {
    const line = "x".repeat(76);
    const body = `Subject: run\r\n\r\n${line}\r\n${line}\r\n..dot\r\n${line}\r\n`;
    everySplit(`${body}.\r\nMAIL FROM:<a@b>\r\n`, 1000, (message, rest, r) => {
      assert.equal(message, body.replace("..dot", ".dot"));
      assert.equal(rest, "MAIL FROM:<a@b>\r\n");
      assert.deepEqual([r.bareEol, r.longLine, r.size], [false, false, message.length]);
    });
  });

  it("finds a bare CR or LF at any octet of a line inside a run of whole lines", () => {
    // Octets around a line end that a word-at-a-time search could confuse with CR or LF.
    for (const filler of [0x00, 0x09, 0x0b, 0x0c, 0x0e, 0x20, 0x7f, 0x80, 0x8a, 0x8d, 0xff]) {
      for (const bare of [CR, LF]) {
        for (let at = 0; at < 9; at++) {
          const line = new Uint8Array(9).fill(filler);
          line[at] = bare;
          const body = concat(bytes("a\r\n"), line, bytes("\r\nb\r\n"));
          const all = concat(body, bytes(".\r\n"));
          for (const cut of [0, 3, 3 + at, 4 + at, all.length]) {
            const { result, rest } = readSplit(all, cut);
            const where = `${bare === CR ? "CR" : "LF"} at ${at} among 0x${filler.toString(16)}, cut at ${cut}`;
            assert.equal(result.bareEol, true, where);
            assert.deepEqual(result.message, body, where);
            assert.equal(rest.length, 0, where);
          }
        }
      }
    }
  });

  it("copies lines holding every octet but CR and LF as they are, without a bare line end", () => {
    const line = Uint8Array.from({ length: 256 }, (_, octet) => octet).filter((octet) => octet !== CR && octet !== LF);
    const body = concat(line, bytes("\r\n"), line.subarray(1), bytes("\r\n"), line.subarray(3), bytes("\r\n"));
    const all = concat(body, bytes(".\r\n"));
    for (let cut = 0; cut <= all.length; cut++) {
      const { result } = readSplit(all, cut);
      assert.equal(result.bareEol, false, `cut at ${cut}`);
      assert.deepEqual(result.message, body, `cut at ${cut}`);
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
