import assert from "node:assert/strict";
import { describe, it } from "node:test";
import addressparser from "nodemailer/lib/addressparser/index.js";
import { asciiDomain } from "../../src/core/address.ts";
import { fromDomain, simpleMailbox } from "../../src/auth/from-domain.ts";
import { headerValues } from "../../src/core/header-section.ts";

const text = (s: string) => new TextEncoder().encode(s);

/** The From domain as it was read before the fast paths: every value through addressparser. */
function referenceFromDomain(message: Uint8Array): string | undefined {
  const domains = new Set<string>();
  for (const value of headerValues(message, "from")) {
    for (const entry of addressparser(value, { flatten: true })) {
      const at = entry.address.lastIndexOf("@");
      if (at < 0) return undefined;
      const domain = asciiDomain(entry.address.slice(at + 1));
      if (domain === "") return undefined;
      domains.add(domain);
    }
  }
  return domains.size === 1 ? [...domains][0] : undefined;
}

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number) {
  let a = seed;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  return { next, pick };
}

/** Characters and pieces addressparser treats specially, and ordinary ones. */
const PIECES = [
  " ",
  "\t",
  '"',
  "\\",
  "(",
  ")",
  "<",
  ">",
  ",",
  ";",
  ":",
  "@",
  "[",
  "]",
  ".",
  "-",
  "'",
  "`",
  "+",
  "#",
  "=",
  "?",
  "a",
  "B",
  "z9",
  "foo",
  "ex.com",
  "Sub.Example.TEST.",
  "é",
  "ü",
  "\u00a0",
  "\u2028",
  "\r",
  "\x00",
  "\x7f",
  "=?utf-8?q?J=C3=B6?=",
  "x@y.test",
  "<x@y.test>",
  '"Q, N"',
  "(c)",
  "bücher.test",
  "[1.2.3.4]",
  "grp:",
  ";",
];
const NAMES = [
  "",
  "Foo",
  "Foo Bar",
  '"Foo Bar"',
  '"Doe, J"',
  "=?utf-8?B?Zm9v?=",
  "J. Doe",
  '""',
  '"Foo\\"',
  '"a\\\\b"',
  "Jöran",
  "a\tb",
  "Mr (x) Y",
];
const LOCALS = ["a", "foo.bar", "x+tag", "o'hara", "a`b", "first_last", "a..b", ".a", "ü"];
const DOMAINS = [
  "sender.test",
  "Sender.TEST",
  "one.test",
  "two.test",
  "sub.sender.test.",
  "-x",
  ".",
  "bücher.example",
  "[192.0.2.1]",
];

/** A From value: often one of the simple shapes, then perhaps broken by a piece put anywhere. */
function fromValue(r: ReturnType<typeof random>): string {
  if (r.next() < 0.15) {
    let v = "";
    const n = 1 + Math.floor(r.next() * 8);
    for (let i = 0; i < n; i++) v += r.pick(PIECES);
    return v;
  }
  const spec = `${r.pick(LOCALS)}@${r.pick(DOMAINS)}`;
  let v = r.next() < 0.3 ? spec : `${r.pick(NAMES)}${r.pick(["", " ", "\t", "  "])}<${spec}>`;
  v = `${r.pick(["", " ", "\t"])}${v}${r.pick(["", " ", "\t "])}`;
  if (r.next() < 0.3) v += `, ${r.pick(NAMES)} <${r.pick(LOCALS)}@${r.pick(DOMAINS)}>`;
  while (r.next() < 0.4) {
    const at = Math.floor(r.next() * (v.length + 1));
    v = v.slice(0, at) + r.pick(PIECES) + v.slice(at);
  }
  return v;
}

/** A header section with From fields among others, folded and spaced in the ways a reader must cope with. */
function message(r: ReturnType<typeof random>): Uint8Array {
  const eol = r.next() < 0.1 ? "\n" : "\r\n";
  const lines: string[] = [];
  if (r.next() < 0.1) lines.push(" leading continuation@before.test");
  const count = 1 + Math.floor(r.next() * 5);
  for (let i = 0; i < count; i++) {
    const name = r.pick([
      "From",
      "from",
      "FROM",
      " From ",
      "From\t",
      "Fröm",
      "From-",
      "Fro",
      "X-From",
      "Fromage",
      "To",
      "Subject",
      "no colon here",
    ]);
    let value = fromValue(r);
    if (r.next() < 0.2) {
      const at = Math.floor(r.next() * (value.length + 1));
      value = value.slice(0, at) + eol + r.pick([" ", "\t"]) + value.slice(at);
    }
    lines.push(
      (name === "no colon here" ? name : `${name}:${value}`) +
        r.pick(["", "", "", "\r", "\r\r", " ", "\t:x", "\r\n", "\n \r"]),
    );
  }
  return text(`${lines.join(eol)}\r\n\r\nFrom: body@not.header\r\n`);
}

describe("simpleMailbox: the shapes read without addressparser", () => {
  it("reads bare and angle addr-specs after plain, quoted or no display names", () => {
    assert.equal(simpleMailbox(" a@sender.test"), "a@sender.test");
    assert.equal(simpleMailbox(" <a@sender.test> "), "a@sender.test");
    assert.equal(simpleMailbox(' "Doe, J" <j@Sender.TEST>'), "j@Sender.TEST");
    assert.equal(simpleMailbox(" =?utf-8?B?Zm9v?= <f@sender.test>"), "f@sender.test");
    assert.equal(simpleMailbox(" Jöran\t<j@sender.test>"), "j@sender.test");
  });

  it("leaves everything else to addressparser", () => {
    for (
      const value of [
        "a@one.test, b@two.test",
        "j@sender.test (comment)",
        '"a\\"b" <a@x.test>',
        "<a@x.test> x",
        "a@bücher.example",
        '"a@b"@x.test',
        "g: a@x.test;",
        "<a(x)@x.test>",
        "a@[1.2.3.4]",
        "",
      ]
    ) {
      assert.equal(simpleMailbox(value), undefined, value);
    }
  });

  it("answers what addressparser answers, whenever it answers", () => {
    const r = random(1);
    let simple = 0;
    for (let i = 0; i < 20_000; i++) {
      const value = fromValue(r);
      const address = simpleMailbox(value);
      if (address === undefined) continue;
      simple++;
      assert.deepEqual(addressparser(value, { flatten: true }).map((e) => e.address), [address], JSON.stringify(value));
    }
    assert.ok(simple > 3_000, `only ${simple} values took the fast path`);
  });

  it("stays fast on a long value that is not simple", () => {
    assert.equal(simpleMailbox(`${" ".repeat(200_000)}x`), undefined);
    assert.equal(simpleMailbox(`${"a".repeat(200_000)}@x.test y`), undefined);
  });
});

describe("fromDomain", () => {
  it("takes the signing domain from the From header", () => {
    assert.equal(fromDomain(text('From: "Doe, J" <j@Sender.TEST>\r\n\r\n')), "sender.test");
    assert.equal(fromDomain(text("From: j@sender.test (comment)\r\nSubject: x\r\n\r\n")), "sender.test");
    assert.equal(fromDomain(text("From: Someone\r\n <j@sender.test>\r\n\r\n")), "sender.test", "folded");
    assert.equal(fromDomain(text("From: a@bücher.example\r\n\r\n")), "xn--bcher-kva.example", "IDN as A-label");
    assert.equal(fromDomain(text("From: a@one.test, b@two.test\r\n\r\n")), undefined, "two domains: no signature");
    assert.equal(
      fromDomain(text("From: a@one.test\r\nFROM : b@One.Test.\r\n\r\n")),
      "one.test",
      "two fields, one domain",
    );
    assert.equal(
      fromDomain(text("From: a@one.test\r\nfrom: b@two.test\r\n\r\n")),
      undefined,
      "two fields, two domains",
    );
    assert.equal(
      fromDomain(text("From: a@one.test\r\nFrom: nobody\r\n\r\n")),
      undefined,
      "an address without a domain",
    );
    assert.equal(fromDomain(text("Subject: no from\r\n\r\n")), undefined);
    assert.equal(
      fromDomain(text("Subject: x\r\n\r\nFrom: body@sender.test\r\n")),
      undefined,
      "the body is not a header",
    );
  });

  it("chooses the domain the full parse chooses, for every header shape", () => {
    const r = random(2);
    const found = new Set<string | undefined>();
    for (let i = 0; i < 10_000; i++) {
      const m = message(r);
      const expected = referenceFromDomain(m);
      found.add(expected);
      assert.equal(fromDomain(m), expected, JSON.stringify(new TextDecoder().decode(m)));
    }
    assert.ok(found.size > 5, "the cases reach several answers");
  });
});
