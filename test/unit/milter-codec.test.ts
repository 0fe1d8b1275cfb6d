/**
 * The milter wire codec: packets framed and read back at every split, the
 * replies' fields checked, and a decoder that meets only garbage (random
 * bytes, truncated or oversized packets) yields packets or a protocol
 * error, never a crash, and never holds more than one packet's worth.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { bareCommand, connectCommand, macroCommand, optnegCommand } from "../../src/milter/commands.ts";
import { Command, Family, Reply, REPLY_CODES } from "../../src/milter/constants.ts";
import { type Packet, PacketDecoder } from "../../src/milter/decoder.ts";
import { MilterProtocolError } from "../../src/milter/errors.ts";
import { FieldReader, FieldWriter } from "../../src/milter/fields.ts";
import { parseNegotiation, parseReply } from "../../src/milter/replies.ts";

const ALL_CODES = new Set(Array.from({ length: 256 }, (_, i) => i));
const bytes = (s: string) => new TextEncoder().encode(s);
const packet = (code: string, data: Uint8Array = new Uint8Array()) =>
  new FieldWriter().bytes(data).packet(code.charCodeAt(0));
const reply = (code: string, build: (w: FieldWriter) => FieldWriter = (w) => w, leadingSpace = false) => {
  const data = build(new FieldWriter()).packet(code.charCodeAt(0)).subarray(5);
  return parseReply({ code: code.charCodeAt(0), data }, leadingSpace);
};

function decodeAll(decoder: PacketDecoder, chunks: Uint8Array[]): Packet[] {
  const out: Packet[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let p = decoder.next(); p; p = decoder.next()) out.push(p);
  }
  return out;
}

describe("milter packets", () => {
  it("frames a command as length, code, data (mfdef.h SMFIC_OPTNEG)", () => {
    assert.deepEqual(
      [...optnegCommand(6, 0x1ff, 0x1fffff)],
      [0, 0, 0, 13, 0x4f, 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff],
    );
    assert.deepEqual([...bareCommand(Command.QUIT)], [0, 0, 0, 1, 0x51]);
  });

  it("writes CONNECT as host, family, port, address; an unknown family has neither port nor address", () => {
    const inet = connectCommand({ hostname: "mx.example", family: Family.INET, port: 2525, address: "192.0.2.1" });
    assert.deepEqual([...inet.subarray(4)], [
      0x43,
      ...bytes("mx.example\0"),
      0x34,
      0x09,
      0xdd,
      ...bytes("192.0.2.1\0"),
    ]);
    const unknown = connectCommand({ hostname: "[api]", family: Family.UNKNOWN });
    assert.deepEqual([...unknown.subarray(4)], [0x43, ...bytes("[api]\0U")]);
  });

  it("writes macros after the code of their command, names of more than one letter in braces", () => {
    const macro = macroCommand(Command.MAIL, { i: "Q1", "auth_authen": "alice", "{mail_addr}": "a@b" });
    assert.deepEqual(
      [...macro.subarray(4)],
      [0x44, 0x4d, ...bytes("i\0Q1\0{auth_authen}\0alice\0{mail_addr}\0a@b\0")],
    );
  });

  it("refuses a string holding NUL rather than cutting it short", () => {
    assert.throws(() => new FieldWriter().string("a\0b"), RangeError);
  });

  it("reads the same packets whatever the split", () => {
    const stream = new Uint8Array([...packet("c"), ...packet("h", bytes("X-A\0 1\0")), ...packet("b", bytes("body"))]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const got = decodeAll(new PacketDecoder(REPLY_CODES), [stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(got.map((p) => [String.fromCharCode(p.code), new TextDecoder().decode(p.data)]), [
        ["c", ""],
        ["h", "X-A\0 1\0"],
        ["b", "body"],
      ]);
    }
  });

  it("refuses length 0, a length over the limit and an unknown code as soon as the header shows them", () => {
    const cases: [Uint8Array, RegExp][] = [
      [Uint8Array.of(0, 0, 0, 0, 0x63), /length 0/],
      [Uint8Array.of(0, 0x20, 0, 1, 0x62), /over the limit of 1048576/],
      [Uint8Array.of(0, 0, 0, 1, 0x5a), /unknown packet code 'Z'/],
      [Uint8Array.of(0, 0, 0, 1, 0x00), /unknown packet code 0x00/],
    ];
    for (const [input, message] of cases) {
      const decoder = new PacketDecoder(REPLY_CODES);
      decoder.push(input);
      assert.throws(() => decoder.next(), (e) => e instanceof MilterProtocolError && message.test(e.message));
      // It stays failed, and holds nothing.
      decoder.push(packet("c"));
      assert.throws(() => decoder.next(), MilterProtocolError);
      assert.equal(decoder.held, 0);
    }
  });

  it("waits for a truncated packet without error", () => {
    const decoder = new PacketDecoder(REPLY_CODES);
    decoder.push(packet("b", bytes("0123456789")).subarray(0, 9));
    assert.equal(decoder.next(), undefined);
  });
});

describe("milter replies", () => {
  it("reads the negotiation answer with its macro lists (milter8.c secondary negotiation)", () => {
    const data = new FieldWriter().uint32(6).uint32(0x21).uint32(0x1000).uint32(2).string("{mail_addr} i")
      .uint32(99).string("ignored").packet(Reply.OPTNEG).subarray(5);
    const answer = parseNegotiation({ code: Reply.OPTNEG, data });
    assert.equal(answer.version, 6);
    assert.equal(answer.actions, 0x21);
    assert.equal(answer.protocol, 0x1000);
    assert.deepEqual([...answer.macroLists], [[2, ["{mail_addr}", "i"]]]);
    assert.throws(() => parseNegotiation({ code: Reply.OPTNEG, data: data.subarray(0, 10) }), /too short/);
  });

  it("reads each verdict and each modification", () => {
    assert.deepEqual(reply("a"), { kind: "accept" });
    assert.deepEqual(reply("t"), { kind: "tempfail" });
    assert.deepEqual(reply("y", (w) => w.string("554 5.7.1 Spam message rejected")), {
      kind: "replycode",
      reply: { code: 554, text: "554 5.7.1 Spam message rejected" },
    });
    // Sendmail's format-string escaping undone, as Postfix does: "%%" is "%", a lone "%" goes.
    assert.deepEqual(reply("y", (w) => w.string("451 4.7.1 100%% full%s")), {
      kind: "replycode",
      reply: { code: 451, text: "451 4.7.1 100% fulls" },
    });
    assert.deepEqual(reply("q", (w) => w.string("held")), { kind: "quarantine", reason: "held" });
    assert.deepEqual(reply("h", (w) => w.string("X-Spam").string("Yes")), {
      kind: "add-header",
      name: "X-Spam",
      value: " Yes",
    });
    // With SMFIP_HDR_LEADSPC the value is taken as it is; a folded value gets CRLF.
    assert.deepEqual(reply("i", (w) => w.uint32(0).string("X-A").string(" a\n\tb"), true), {
      kind: "insert-header",
      index: 0,
      name: "X-A",
      value: " a\r\n\tb",
    });
    assert.deepEqual(reply("m", (w) => w.uint32(0).string("Subject").string("")), {
      kind: "change-header",
      index: 1,
      name: "Subject",
      value: "",
    });
    assert.deepEqual(reply("e", (w) => w.string("<b@example.org>")), {
      kind: "change-sender",
      address: "<b@example.org>",
    });
    assert.deepEqual(reply("2", (w) => w.string("<c@example.org>").string("NOTIFY=NEVER")), {
      kind: "add-recipient",
      address: "<c@example.org>",
      args: "NOTIFY=NEVER",
    });
    assert.deepEqual(reply("-", (w) => w.string("<d@example.org>")), {
      kind: "delete-recipient",
      address: "<d@example.org>",
    });
    assert.deepEqual(reply("b", (w) => w.bytes(bytes("new\r\n"))), { kind: "replace-body", chunk: bytes("new\r\n") });
  });

  it("refuses malformed fields", () => {
    const bad: [string, (w: FieldWriter) => FieldWriter, RegExp][] = [
      ["c", (w) => w.byte(1), /unexpected bytes/],
      ["y", (w) => w.string("250 ok"), /not a 4xx or 5xx/],
      ["y", (w) => w.string("550 4.7.1 mixed"), /not a 4xx or 5xx/],
      ["y", (w) => w.bytes(bytes("550 no NUL")), /NUL-terminated/],
      ["h", (w) => w.string("X Bad").string("v"), /not a header field name/],
      ["h", (w) => w.string("X-A").string("a\r\nInjected: yes"), /without folding/],
      ["h", (w) => w.bytes(Uint8Array.of(0x58, 0)).bytes(Uint8Array.of(0xff, 0)), /not valid UTF-8/],
      ["i", (w) => w.uint16(1), /too short for a 32-bit number/],
      ["e", (w) => w.string("a b@example.org"), /not an envelope address/],
      ["+", (w) => w.string("a@b").string("extra"), /unexpected bytes/],
      ["O", (w) => w, /not a reply to an event/],
    ];
    for (const [code, build, message] of bad) {
      assert.throws(() => reply(code, build), (e) => e instanceof MilterProtocolError && message.test(e.message), code);
    }
  });

  it("reads fields only within the packet", () => {
    const reader = new FieldReader(Uint8Array.of(1, 2), "test");
    assert.equal(reader.uint16(), 0x0102);
    assert.throws(() => reader.byte(), /too short for a byte/);
  });
});

describe("milter decoder against garbage", () => {
  const MAX = 4096;

  /** Feed every chunk; only packets within the limit or one MilterProtocolError may come out, and memory stays bounded. */
  function survives(chunks: Uint8Array[], codes: ReadonlySet<number>): void {
    const decoder = new PacketDecoder(codes, MAX);
    try {
      for (const chunk of chunks) {
        decoder.push(chunk);
        for (let p = decoder.next(); p; p = decoder.next()) {
          assert.ok(p.data.length < MAX);
          assert.ok(codes.has(p.code));
        }
        // Drained, the decoder holds at most the buffer of the packet being read, within the limit.
        assert.ok(decoder.held < MAX, `holds ${decoder.held}`);
      }
    } catch (error) {
      if (!(error instanceof MilterProtocolError)) throw error;
    }
  }

  it("random bytes in random chunks", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (chunks) => {
        survives(chunks, REPLY_CODES);
        survives(chunks, ALL_CODES);
      }),
      { numRuns: 500 },
    );
  });

  it("well-formed, truncated and oversized packets mixed", () => {
    const aPacket = fc.tuple(
      fc.constantFrom(...REPLY_CODES),
      fc.uint8Array({ maxLength: 200 }),
      fc.oneof(
        fc.constant("whole" as const),
        fc.constant("truncated" as const),
        fc.constant("oversized" as const),
      ),
    ).map(([code, data, form]) => {
      const whole = new FieldWriter().bytes(data).packet(code);
      if (form === "truncated") return whole.subarray(0, Math.floor(whole.length / 2));
      if (form === "oversized") new DataView(whole.buffer).setUint32(0, MAX + 1 + data.length);
      return whole;
    });
    fc.assert(
      fc.property(fc.array(aPacket, { maxLength: 10 }), fc.integer({ min: 1, max: 64 }), (packets, size) => {
        const all = new Uint8Array(packets.reduce((n, p) => n + p.length, 0));
        let pos = 0;
        for (const p of packets) {
          all.set(p, pos);
          pos += p.length;
        }
        const chunks: Uint8Array[] = [];
        for (let at = 0; at < all.length; at += size) chunks.push(all.subarray(at, at + size));
        survives(chunks, REPLY_CODES);
      }),
      { numRuns: 500 },
    );
  });
});
