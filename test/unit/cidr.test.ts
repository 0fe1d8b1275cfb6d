import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isIP } from "node:net";
import { type Cidr, cidrContains, formatIp, ipToBigInt, ipv4Number, parseCidr } from "../../src/core/cidr.ts";

/** Seeded (an LCG), so that a failure can be replayed. */
function random(seed: number): (n: number) => number {
  let s = seed;
  return (n) => ((s = (s * 1103515245 + 12345) % 2147483648), s % n);
}

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  assert.ok(c, `${text} should parse`);
  return c;
};
const inside = (range: string, address: string) => cidrContains([cidr(range)], address);

describe("ipToBigInt", () => {
  it("maps IPv4 into ::ffff:0:0/96 and expands IPv6", () => {
    assert.equal(ipToBigInt("0.0.0.0"), 0xffffn << 32n);
    assert.equal(ipToBigInt("127.0.0.1"), (0xffffn << 32n) | 0x7f000001n);
    assert.equal(ipToBigInt("::ffff:127.0.0.1"), ipToBigInt("127.0.0.1"));
    assert.equal(ipToBigInt("::FFFF:7f00:1"), ipToBigInt("127.0.0.1"));
    assert.equal(ipToBigInt("::"), 0n);
    assert.equal(ipToBigInt("::1"), 1n);
    assert.equal(ipToBigInt("2001:db8::1"), (0x20010db8n << 96n) | 1n);
    assert.equal(ipToBigInt("2001:db8:0:0:0:0:0:1"), ipToBigInt("2001:db8::1"));
    assert.equal(ipToBigInt("1::"), 1n << 112n);
    assert.equal(ipToBigInt("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), (1n << 128n) - 1n);
  });

  it("refuses what is not an address", () => {
    for (const text of ["", "localhost", "256.0.0.1", "1.2.3", "1:2:3:4:5:6:7:8:9", "::1::", "01.2.3.4"]) {
      assert.equal(ipToBigInt(text), undefined, text);
    }
  });
});

describe("formatIp (RFC 5952 4)", () => {
  it("writes IPv4 and IPv4-mapped addresses dotted, IPv6 in its one canonical form", () => {
    const cases: [string, string][] = [
      ["192.0.2.1", "192.0.2.1"],
      ["::ffff:7f00:1", "127.0.0.1"],
      ["::", "::"],
      ["::1", "::1"],
      ["1::", "1::"],
      ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of equal runs
      ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // never "::" for one group
      ["fe80::0001", "fe80::1"],
      ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
      ["::7f00:1", "::7f00:1"], // IPv4-compatible is not IPv4-mapped
    ];
    for (const [text, canonical] of cases) assert.equal(formatIp(ipToBigInt(text)!), canonical, text);
  });

  it("reads back as the same address, for random values", () => {
    const next = random(13);
    for (let i = 0; i < 20_000; i++) {
      let value = 0n;
      for (let g = 0; g < 8; g++) value = (value << 16n) | BigInt(next(4) === 0 ? next(0x10000) : 0);
      const text = formatIp(value);
      assert.equal(ipToBigInt(text), value, text);
      assert.ok(!/(^|:)0[0-9a-f]/.test(text) && !text.includes(":::"), text);
    }
  });
});

describe("parseCidr / cidrContains", () => {
  it("IPv4 ranges", () => {
    assert.ok(inside("10.0.0.0/8", "10.255.255.255"));
    assert.ok(inside("10.0.0.0/8", "10.0.0.0"));
    assert.ok(!inside("10.0.0.0/8", "11.0.0.0"));
    assert.ok(!inside("10.0.0.0/8", "9.255.255.255"));
    assert.ok(inside("192.168.1.0/24", "192.168.1.77"));
    assert.ok(!inside("192.168.1.0/24", "192.168.2.1"));
    assert.ok(inside("172.16.0.0/12", "172.31.1.1"));
    assert.ok(!inside("172.16.0.0/12", "172.32.0.0"));
  });

  it("host bits in the base are masked off", () => {
    assert.ok(inside("10.1.2.3/8", "10.9.9.9"));
    assert.equal(cidr("10.1.2.3/8").base, cidr("10.0.0.0/8").base);
    assert.equal(cidr(" 10.0.0.0/8 ").text, "10.0.0.0/8");
  });

  it("/32 and /128 match exactly one address; no prefix means a single address", () => {
    assert.ok(inside("192.0.2.1/32", "192.0.2.1"));
    assert.ok(!inside("192.0.2.1/32", "192.0.2.0"));
    assert.ok(!inside("192.0.2.1/32", "192.0.2.2"));
    assert.ok(inside("2001:db8::1/128", "2001:db8::1"));
    assert.ok(!inside("2001:db8::1/128", "2001:db8::2"));
    assert.ok(!inside("2001:db8::1/128", "2001:db8::"));
    assert.ok(inside("192.0.2.1", "192.0.2.1"));
    assert.ok(!inside("192.0.2.1", "192.0.2.2"));
    assert.ok(inside("::1", "::1"));
    assert.ok(!inside("::1", "::2"));
  });

  it("IPv6 ranges", () => {
    assert.ok(inside("2001:db8::/32", "2001:db8:ffff::1"));
    assert.ok(!inside("2001:db8::/32", "2001:db9::1"));
    assert.ok(inside("fe80::/10", "febf::1"));
    assert.ok(!inside("fe80::/10", "fec0::1"));
    assert.ok(inside("::1/128", "0:0:0:0:0:0:0:1"));
  });

  it("v4-mapped IPv6 clients match IPv4 ranges, and IPv4 clients match ::ffff: ranges", () => {
    assert.ok(inside("127.0.0.0/8", "::ffff:127.0.0.1"));
    assert.ok(inside("127.0.0.0/8", "::FFFF:127.0.0.1"));
    assert.ok(!inside("127.0.0.0/8", "::ffff:128.0.0.1"));
    assert.ok(inside("::ffff:10.0.0.0/104", "10.2.3.4"));
    assert.ok(!inside("::ffff:10.0.0.0/104", "11.2.3.4"));
    // The IPv4-compatible form (no ffff) is a different address.
    assert.ok(!inside("127.0.0.0/8", "::7f00:1"));
  });

  it("/0 matches every address of its own family only", () => {
    assert.ok(inside("0.0.0.0/0", "1.2.3.4"));
    assert.ok(inside("0.0.0.0/0", "255.255.255.255"));
    assert.ok(inside("0.0.0.0/0", "::ffff:1.2.3.4"));
    assert.ok(!inside("0.0.0.0/0", "2001:db8::1"));
    assert.ok(!inside("0.0.0.0/0", "::1"));
    assert.ok(inside("::/0", "2001:db8::1"));
    assert.ok(inside("::/0", "1.2.3.4"), "::/0 covers the v4-mapped space too");
    assert.equal(cidr("::/0").mask, 0n);
  });

  it("refuses invalid prefixes and addresses", () => {
    for (
      const text of [
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/-1",
        "10.0.0.0/",
        "10.0.0.0/8a",
        "10.0.0.0/ 8",
        "10.0.0.0/0x8",
        "10.0.0/8",
        "example.com/8",
        "/8",
        "",
      ]
    ) {
      assert.equal(parseCidr(text), undefined, text);
    }
  });

  it(
    "refuses a second prefix",
    {},
    () => {
      assert.equal(parseCidr("10.0.0.0/8/9"), undefined);
      assert.equal(parseCidr("::1/128/0"), undefined);
    },
  );

  it("an address that is not an IP is in no range; an empty list contains nothing", () => {
    assert.ok(!cidrContains([cidr("0.0.0.0/0"), cidr("::/0")], "localhost"));
    assert.ok(!cidrContains([cidr("0.0.0.0/0"), cidr("::/0")], ""));
    assert.ok(!cidrContains([], "127.0.0.1"));
  });

  it("matches when any range of a list does", () => {
    const list = [cidr("10.0.0.0/8"), cidr("2001:db8::/32")];
    assert.ok(cidrContains(list, "10.1.1.1"));
    assert.ok(cidrContains(list, "2001:db8::5"));
    assert.ok(!cidrContains(list, "192.0.2.1"));
  });
});

describe("IPv4 without BigInt", () => {
  it("reads exactly what isIP calls IPv4, plain or IPv4-mapped, as a 32-bit number", () => {
    assert.equal(ipv4Number("127.0.0.1"), 0x7f000001);
    assert.equal(ipv4Number("::ffff:255.255.255.255"), 0xffffffff);
    assert.equal(ipv4Number("0.0.0.0"), 0);
    for (
      const text of [
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.",
        ".1.2.3.4",
        "256.1.1.1",
        "1.2.3.4 ",
        "::FFFF:1.2.3.4",
        "::ffff:7f00:1",
        "1..2.3",
        "",
      ]
    ) {
      assert.equal(ipv4Number(text), undefined, text);
    }
    const next = random(11);
    const octets = [
      "0",
      "1",
      "9",
      "25",
      "99",
      "100",
      "199",
      "249",
      "255",
      "256",
      "300",
      "00",
      "010",
      "1000",
      "",
      "a",
      " 1",
    ];
    const separators = [".", ".", ".", ".", ".", "..", ":", ""];
    const pick = (list: string[]) => list[next(list.length)]!;
    let valid = 0;
    for (let i = 0; i < 50_000; i++) {
      let text = pick(["", "", "::ffff:", "::FFFF:", "::"]);
      for (let k = 0, parts = 3 + next(3); k < parts; k++) text += (k > 0 ? pick(separators) : "") + pick(octets);
      const plain = text.startsWith("::ffff:") ? text.slice(7) : text;
      const expected = isIP(plain) === 4 ? Number(ipToBigInt(text)! & 0xffffffffn) : undefined;
      if (expected !== undefined) valid++;
      assert.equal(ipv4Number(text), expected, JSON.stringify(text));
    }
    assert.ok(valid > 500, `only ${valid} of the cases are IPv4`);
  });

  it("a range holds the IPv4 addresses its 128-bit form holds, for IPv4 and IPv6 ranges alike", () => {
    const ranges = [
      "0.0.0.0/0",
      "10.0.0.0/8",
      "10.1.2.3/32",
      "128.0.0.0/1",
      "127.0.0.0/8",
      "192.0.2.0/24",
      "0.0.0.0/31",
      "::/0",
      "::/95",
      "::ffff:0:0/96",
      "::ffff:0:0/97",
      "::ffff:10.0.0.0/104",
      "::ffff:255.255.255.255/128",
      "::1/128",
      "2001:db8::/32",
      "::fffe:0:0/96",
    ].map(cidr);
    assert.equal(cidr("2001:db8::/32").v4, undefined, "an IPv6 range outside ::ffff:0:0/96 holds no IPv4 address");
    const next = random(12);
    const octet = () => [0, 1, 2, 3, 10, 127, 128, 192, 254, 255][next(10)]!;
    for (let i = 0; i < 20_000; i++) {
      const address = `${next(2) ? "::ffff:" : ""}${octet()}.${octet()}.${octet()}.${octet()}`;
      const value = ipToBigInt(address)!;
      for (const range of ranges) {
        assert.equal(
          cidrContains([range], address),
          (value & range.mask) === range.base,
          `${address} in ${range.text}`,
        );
      }
    }
  });
});
