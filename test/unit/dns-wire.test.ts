import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodeMessage,
  encodeMessage,
  encodeQuery,
  formatIpv6,
  type Message,
  type ResourceRecord,
} from "../../src/dns/wire.ts";

const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));

/** A reply laid out by hand from RFC 1035 4.1 (offsets in comments). */
const HAND_REPLY = Uint8Array.from([
  0xbe,
  0xef,
  0x81,
  0x80,
  0,
  1,
  0,
  4,
  0,
  1,
  0,
  0, // header: id, QR RD RA, QD=1 AN=4 NS=1 AR=0
  7,
  ...ascii("example"),
  4,
  ...ascii("test"),
  0, // 12: question name
  0,
  15,
  0,
  1, //                                   26: MX IN
  0xc0,
  12,
  0,
  15,
  0,
  1,
  0,
  0,
  0x0e,
  0x10,
  0,
  7, // 30: MX, ptr->12, TTL 3600, RDLENGTH 7
  0,
  10,
  2,
  ...ascii("mx"),
  0xc0,
  12, //            42: pref 10, "mx" at 44 + ptr->12
  0xc0,
  12,
  0,
  16,
  0,
  1,
  0,
  0,
  1,
  0x2c,
  0,
  12, //   49: TXT, TTL 300, RDLENGTH 12
  5,
  ...ascii("hello"),
  5,
  ...ascii("world"),
  0xc0,
  44,
  0,
  1,
  0,
  1,
  0,
  0,
  0,
  60,
  0,
  4,
  127,
  0,
  0,
  1, // A for mx.example.test (ptr->44)
  0xc0,
  44,
  0,
  28,
  0,
  1,
  0,
  0,
  0,
  60,
  0,
  16,
  0x20,
  0x01,
  0x0d,
  0xb8,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  1,
  4,
  ...ascii("test"),
  0,
  0,
  6,
  0,
  1,
  0,
  0,
  0,
  30,
  0,
  26, // authority: SOA for test, TTL 30
  2,
  ...ascii("ns"),
  0xc0,
  20,
  0,
  0,
  0,
  0,
  1,
  0,
  0,
  0,
  2,
  0,
  0,
  0,
  3,
  0,
  0,
  0,
  4,
  0,
  0,
  0,
  5, // mname ns.test, rname root
]);

describe("DNS wire codec", () => {
  test("decodes a hand-made RFC 1035 reply with compression pointers", () => {
    const r = decodeMessage(HAND_REPLY);
    assert.ok(r.ok, r.ok ? "" : r.error);
    const m = r.message;
    assert.deepEqual(m.header, { id: 0xbeef, qr: true, opcode: 0, aa: false, tc: false, rd: true, ra: true, rcode: 0 });
    assert.deepEqual(m.questions, [{ name: "example.test", type: 15, class: 1 }]);
    assert.deepEqual(m.answers[0], {
      type: "MX",
      preference: 10,
      exchange: "mx.example.test",
      name: "example.test",
      class: 1,
      ttl: 3600,
    });
    assert.deepEqual(m.answers[1], {
      type: "TXT",
      strings: ["hello", "world"],
      name: "example.test",
      class: 1,
      ttl: 300,
    });
    assert.deepEqual(m.answers[2], { type: "A", address: "127.0.0.1", name: "mx.example.test", class: 1, ttl: 60 });
    assert.deepEqual(m.answers[3], {
      type: "AAAA",
      address: "2001:db8::1",
      name: "mx.example.test",
      class: 1,
      ttl: 60,
    });
    assert.deepEqual(m.authorities[0], {
      type: "SOA",
      mname: "ns.test",
      rname: ".",
      serial: 1,
      refresh: 2,
      retry: 3,
      expire: 4,
      minimum: 5,
      name: "test",
      class: 1,
      ttl: 30,
    });
  });

  test("a query matches the RFC 1035 layout byte for byte, with an EDNS0 OPT of 1232", () => {
    const q = encodeQuery(0x1234, "Example.TEST.", "MX");
    assert.deepEqual(Array.from(q), [
      0x12,
      0x34,
      0x01,
      0x00,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      1, // RD, QD=1, AR=1
      7,
      ...ascii("Example"),
      4,
      ...ascii("TEST"),
      0,
      0,
      15,
      0,
      1,
      0,
      0,
      41,
      0x04,
      0xd0,
      0,
      0,
      0,
      0,
      0,
      0, // OPT: root, type 41, class 1232, ttl 0, rdlen 0
    ]);
    assert.equal(encodeQuery(1, "a.test", "A", false).length, 12 + 8 + 4);
  });

  test("round trips every record type, compressing repeated names", () => {
    const rr = (d: Record<string, unknown>): ResourceRecord =>
      ({ name: "example.test", class: 1, ttl: 42, ...d }) as ResourceRecord;
    const message: Message = {
      header: { id: 7, qr: true, opcode: 0, aa: true, tc: false, rd: true, ra: false, rcode: 3 },
      questions: [{ name: "example.test", type: 255, class: 1 }],
      answers: [
        rr({ type: "A", address: "192.0.2.1" }),
        rr({ type: "AAAA", address: "2001:db8:0:1::ff" }),
        rr({ type: "MX", preference: 5, exchange: "mx1.example.test" }),
        rr({ type: "MX", preference: 0, exchange: "." }),
        rr({ type: "TXT", strings: ["v=spf1 ", "-all", "", "é"] }),
        rr({ type: "CNAME", target: "alias.example.test" }),
        rr({ type: "NS", target: "ns.example.test" }),
        rr({ type: "PTR", target: "host.example.test" }),
        rr({ type: "UNKNOWN", code: 99, rdata: Uint8Array.from([1, 2, 3]) }),
      ],
      authorities: [
        rr({
          type: "SOA",
          mname: "ns.example.test",
          rname: "h.example.test",
          serial: 0xffffffff,
          refresh: 1,
          retry: 2,
          expire: 3,
          minimum: 4,
        }),
      ],
      additionals: [{ type: "OPT", name: ".", class: 1232, ttl: 0, rdata: new Uint8Array() }],
    };
    const bytes = encodeMessage(message);
    const r = decodeMessage(bytes);
    assert.ok(r.ok);
    assert.deepEqual(r.message, message);
    // 12 owner names after the first are a 2-byte pointer each.
    assert.ok(bytes.filter((b, i) => b === 0xc0 && bytes[i + 1] === 12).length >= 11);
  });

  test("pointer loops and forward pointers are errors, not hangs or throws", () => {
    const header = [0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
    const self = decodeMessage(Uint8Array.from([...header, 0xc0, 12, 0, 1, 0, 1]));
    assert.equal(self.ok, false);
    assert.match(self.ok ? "" : self.error, /loop/);
    const cycle = decodeMessage(Uint8Array.from([...header, 0xc0, 14, 0xc0, 12, 0, 1, 0, 1]));
    assert.equal(cycle.ok, false);
    const outside = decodeMessage(Uint8Array.from([...header, 1, 97, 0xc0, 0x3f]));
    assert.equal(outside.ok, false);
  });

  test("rejects bad lengths: RDATA overrun, A of 5 bytes, label past the end, name over 255", () => {
    const good = Array.from(HAND_REPLY);
    const rdlenOverrun = [...good];
    rdlenOverrun[41] = 200;
    assert.equal(decodeMessage(Uint8Array.from(rdlenOverrun)).ok, false);
    const q = [0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0];
    assert.equal(decodeMessage(Uint8Array.from([...q, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5])).ok, false);
    assert.equal(decodeMessage(Uint8Array.from([...q.slice(0, 5), 1, ...q.slice(6, 12), 9, 97])).ok, false);
    const long = [...q.slice(0, 5), 1, ...q.slice(6, 7), 0, ...q.slice(8, 12)];
    for (let i = 0; i < 5; i++) long.push(63, ...Array<number>(63).fill(97));
    assert.match(String((decodeMessage(Uint8Array.from([...long, 0, 0, 1, 0, 1])) as { error?: string }).error), /255/);
    assert.equal(decodeMessage(new Uint8Array(11)).ok, false);
  });

  test("every truncation and many byte flips of a valid reply give values, never throws", () => {
    for (let n = 0; n < HAND_REPLY.length; n++) {
      assert.equal(decodeMessage(HAND_REPLY.subarray(0, n)).ok, false, `prefix ${n}`);
    }
    let seed = 12345;
    const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 5000; i++) {
      const copy = HAND_REPLY.slice();
      for (let k = 0; k < 3; k++) copy[next() % copy.length] = next() & 0xff;
      assert.doesNotThrow(() => decodeMessage(copy));
    }
  });

  test("encoding refuses what cannot go on the wire", () => {
    const m = (answers: ResourceRecord[]): Message => ({
      header: { id: 0, qr: true, opcode: 0, aa: false, tc: false, rd: false, ra: false, rcode: 0 },
      questions: [],
      answers,
      authorities: [],
      additionals: [],
    });
    assert.throws(() => encodeQuery(1, `${"a".repeat(64)}.test`, "A"), RangeError);
    assert.throws(() => encodeQuery(1, "a..test", "A"), RangeError);
    assert.throws(
      () => encodeMessage(m([{ type: "TXT", strings: ["x".repeat(256)], name: "t", class: 1, ttl: 1 }])),
      RangeError,
    );
    assert.throws(() => encodeMessage(m([{ type: "A", address: "::1", name: "t", class: 1, ttl: 1 }])), RangeError);
  });

  test("IPv6 text follows RFC 5952", () => {
    const v6 = (groups: number[]): Uint8Array => Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]));
    assert.equal(formatIpv6(v6([0, 0, 0, 0, 0, 0, 0, 1])), "::1");
    assert.equal(formatIpv6(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])), "2001:db8::1:0:0:1");
    assert.equal(formatIpv6(v6([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1])), "2001:db8:0:1:1:1:1:1");
    assert.equal(formatIpv6(v6([0, 0, 0, 0, 0, 0, 0, 0])), "::");
  });
});
