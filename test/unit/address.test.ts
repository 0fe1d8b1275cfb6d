import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { domainToASCII } from "node:url";
import {
  canonicalDomain,
  formatMailbox,
  isDotString,
  isIPv6,
  literalAddress,
  parseMailbox,
} from "../../src/core/address.ts";

const ok = (text: string, utf8 = false) => {
  const r = parseMailbox(text, { utf8 });
  assert.ok(r.ok, `${text}: ${r.ok ? "" : r.error}`);
  return r.mailbox;
};
const bad = (text: string, pattern: RegExp, utf8 = false) => {
  const r = parseMailbox(text, { utf8 });
  assert.ok(!r.ok, `${text} should be refused`);
  assert.match(r.error, pattern);
  assert.ok(r.error.includes(`"${text}"`), "the error quotes the value");
};

describe("parseMailbox (RFC 5321 4.1.2)", () => {
  it("parses dot-atoms and lower-cases the domain only", () => {
    assert.deepEqual(ok("First.Last+tag@Example.COM"), { local: "First.Last+tag", domain: "example.com" });
    assert.deepEqual(ok("!#$%&'*+-/=?^_`{|}~@a-b.c1"), { local: "!#$%&'*+-/=?^_`{|}~", domain: "a-b.c1" });
  });

  it("decodes quoted local parts and re-quotes only when needed", () => {
    const m = ok('"john \\"jd\\" doe@home"@example.com');
    assert.deepEqual(m, { local: 'john "jd" doe@home', domain: "example.com" });
    assert.equal(formatMailbox(m), '"john \\"jd\\" doe@home"@example.com');
    assert.equal(formatMailbox(ok('"plain"@x.test')), "plain@x.test");
    assert.equal(formatMailbox(ok('"a..b"@x.test')), '"a..b"@x.test');
  });

  it("accepts address literals", () => {
    assert.equal(ok("u@[192.0.2.1]").domain, "[192.0.2.1]");
    assert.equal(ok("u@[IPv6:2001:db8::1]").domain, "[ipv6:2001:db8::1]");
    assert.equal(ok("u@[IPv6:::ffff:192.0.2.1]").domain, "[ipv6:::ffff:192.0.2.1]");
    bad("u@[256.0.0.1]", /invalid address literal/);
    bad("u@[IPv6:1::2::3]", /invalid address literal/);
    bad("u@[192.0.2.1", /unterminated address literal/);
    bad("u@[1.2.3]", /invalid address literal/);
    bad("u@[IPv6:fe80::1%eth0]", /invalid address literal/);
  });

  it("refuses general address literals: no tag but IPv6 is registered (RFC 5321 4.1.3)", () => {
    bad("u@[x-tag:anything]", /address literal tag "x-tag" is not supported/);
    bad("u@[IPv4:192.0.2.1]", /address literal tag "IPv4" is not supported/);
    bad("u@[:x]", /invalid address literal/);
    bad("u@[x-tag:a[b]", /invalid address literal/);
  });

  it("refuses a bare address or an all-numeric top-level label as the domain (RFC 3696 2)", () => {
    bad("u@192.0.2.1", /"192\.0\.2\.1" is an address; write it as an address literal, \[192\.0\.2\.1\]/);
    bad("u@2130706433", /all-numeric label/);
    bad("u@example.123", /all-numeric label/);
    ok("u@123.example");
    ok("u@x.y2k");
  });

  it("names the address an address literal holds, in one canonical form", () => {
    const same: [string, string][] = [
      ["[192.0.2.1]", "192.0.2.1"],
      ["[127.000.000.001]", "127.0.0.1"],
      ["[IPv6:::ffff:127.0.0.1]", "127.0.0.1"],
      ["[ipv6:0:0:0:0:0:FFFF:7F00:1]", "127.0.0.1"],
      ["[IPv6:::ffff:127.000.0.01]", "127.0.0.1"],
      ["[IPv6:2001:DB8:0:0:1:0:0:1]", "2001:db8::1:0:0:1"],
      ["[IPv6:1:0:0:2:0:0:0:3]", "1:0:0:2::3"],
      ["[IPv6:0:0:0:0:0:0:0:1]", "::1"],
      ["[IPv6:::]", "::"],
      ["[IPv6:fe80::1]", "fe80::1"],
      ["[IPv6:1:2:3:4:5:6:7:8]", "1:2:3:4:5:6:7:8"],
    ];
    for (const [literal, address] of same) assert.equal(literalAddress(literal), address, literal);
    for (const no of ["example.com", "[1.2.3]", "[x-tag:1]", "[IPv6:1::2::3]", "192.0.2.1"]) {
      assert.equal(literalAddress(no), undefined, no);
    }
    assert.equal(canonicalDomain("[IPv6:::FFFF:127.0.0.1]"), "[127.0.0.1]");
    assert.equal(canonicalDomain("[IPv6:2001:DB8::0:1]"), "[ipv6:2001:db8::1]");
    assert.equal(canonicalDomain("Example.COM"), "example.com");
  });

  it("validates IPv6 forms", () => {
    for (const good of ["::", "::1", "1:2:3:4:5:6:7:8", "1::8", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4"]) {
      assert.ok(isIPv6(good), good);
    }
    for (const no of ["1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", ":1::", "1:::2", "12345::", "1:2:3:4:5:6:7:1.2.3.4"]) {
      assert.ok(!isIPv6(no), no);
    }
    // "::" stands for at least two groups: at most 6 others, or 4 before an IPv4 tail (RFC 5321 4.1.3).
    for (const good of ["1:2:3:4:5:6::", "::1:2:3:4:5:6", "1:2:3::4:5:6", "1:2:3:4::1.2.3.4", "::1:2:3:4:1.2.3.4"]) {
      assert.ok(isIPv6(good), good);
    }
    for (
      const no of ["1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7", "1:2:3:4::5:6:7", "1:2:3:4:5::1.2.3.4", "::1:2:3:4:5:1.2.3.4"]
    ) assert.ok(!isIPv6(no), no);
  });

  it("refuses malformed addresses with clear errors", () => {
    bad("no-at-sign", /missing "@"/);
    bad("@x.test", /empty local part/);
    bad("a..b@x.test", /not a dot-atom/);
    bad(".a@x.test", /not a dot-atom/);
    bad("a b@x.test", /not a dot-atom/);
    bad("a@", /empty domain/);
    bad("a@x..test", /empty label/);
    bad("a@-x.test", /invalid domain label "-x"/);
    bad("a@x_y.test", /invalid domain label/);
    bad('"unterminated@x.test', /unterminated quoted/);
    bad('"a"b@x.test', /expected "@"/);
  });

  it("enforces octet limits (RFC 5321 4.5.3.1)", () => {
    ok(`${"a".repeat(64)}@x.test`);
    bad(`${"a".repeat(65)}@x.test`, /local part longer than 64/);
    bad(`a@${"b".repeat(64)}.test`, /longer than 63/);
    const domain = Array.from({ length: 5 }, () => "d".repeat(63)).join(".");
    bad(`a@${domain}`, /domain longer than 255/);
    const long = Array.from({ length: 4 }, () => "d".repeat(61)).join(".") + ".x"; // 249 octets
    ok(`abcd@${long}`); // 4 + 1 + 249 + 2 = 256
    bad(`abcde@${long}`, /path longer than 256/);
    // Octets, not characters: 22 three-octet characters are 66 octets.
    bad(`${"é".repeat(33)}@x.test`, /local part longer than 64/, true);
  });

  it("takes a non-ASCII domain label only when it is an IDNA U-label (RFC 6531 3.3, RFC 5890)", () => {
    assert.equal(ok("u@bücher.test", true).domain, "bücher.test");
    assert.equal(ok("u@\u{1f600}.test", true).domain, "\u{1f600}.test");
    bad("u@ex\u00a0ample.test", /not an internationalized label|invalid domain label/, true);
    bad("u@evil\u3002com", /not an internationalized label/, true); // maps to "evil.com": a dot in disguise
    bad("u@evil\uff0ecom", /not an internationalized label/, true);
    bad("u@\u200bexample.test", /not an internationalized label/, true); // ignorable: "example"
    bad("u@\u00a0.test", /not an internationalized label|invalid domain label/, true);
  });

  it("allows non-ASCII only with SMTPUTF8", () => {
    bad("josé@exämple.test", /SMTPUTF8/);
    assert.deepEqual(ok("josé@EXÄMPLE.test", true), { local: "josé", domain: "exämple.test" });
    bad("a\u0000b@x.test", /not a dot-atom/, true);
  });

  it("refuses control characters, quoted or not", () => {
    for (const ch of ["\u0000", "\u0001", "\t", "\u001f", "\u007f"]) {
      bad(`a${ch}b@x.test`, /not a dot-atom/);
      bad(`"a${ch}b"@x.test`, /invalid character/);
      bad(`"a\\${ch}b"@x.test`, /invalid quoted-pair/);
    }
    bad("a@x\u0000.test", /invalid domain label/);
    // C1 controls are UTF8-non-ascii by the grammar of RFC 6531 3.3, and controls all the same.
    bad("a\u0085b@x.test", /control character U\+0085/, true);
    bad('"a\u0080b"@x.test', /control character U\+0080/, true);
    bad("a@x\u009f.test", /control character U\+009F/, true);
  });

  it("refuses text no UTF-8 can encode: half a surrogate pair (RFC 3629 3)", () => {
    bad("\ud800@x.test", /unpaired surrogate/, true);
    bad("a@x\udc00.test", /unpaired surrogate/, true);
    bad('"\ud83d"@x.test', /unpaired surrogate/, true);
    assert.equal(ok("\u{1f600}@x.test", true).local, "\u{1f600}", "a whole pair is one character");
  });
});

describe("the character rules, as they were written per character", () => {
  /** Each code point checked on its own, with the string split on dots: the definitions of RFC 5321 4.1.2 as read. */
  const atext = (ch: string, utf8: boolean) =>
    /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/.test(ch) || (utf8 && ch.codePointAt(0)! > 0x7f);
  const dotString = (s: string, utf8: boolean) =>
    s !== "" && s.split(".").every((atom) => atom !== "" && [...atom].every((ch) => atext(ch, utf8)));
  const labelChars = (label: string, utf8: boolean) =>
    [...label].every((ch) => /[A-Za-z0-9-]/.test(ch) || (utf8 && ch.codePointAt(0)! > 0x7f));
  const octets = (s: string) => new TextEncoder().encode(s).length;

  let seed = 5;
  const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  const pieces = [
    "a",
    "Z",
    "0",
    "-",
    "_",
    ".",
    ".",
    "!",
    "~",
    "`",
    "{",
    " ",
    '"',
    "\\",
    "@",
    "é",
    "\u0080",
    "\uffff",
    "\u{1f600}",
    "\ud800",
    "\udc00",
    "\u0000",
    "\u007f",
  ];
  const text = () => {
    let t = "";
    for (let k = next(7); k >= 0; k--) t += pieces[next(pieces.length)];
    return t;
  };

  it("a dot-string is what it was, with and without SMTPUTF8", () => {
    let yes = 0;
    for (let i = 0; i < 30_000; i++) {
      const s = text();
      for (const utf8 of [false, true]) {
        const expected = dotString(s, utf8);
        if (expected) yes++;
        assert.equal(isDotString(s, utf8), expected, `${JSON.stringify(s)} utf8=${utf8}`);
      }
    }
    assert.ok(yes > 1_000, `only ${yes} dot-strings`);
  });

  /** What a domain label is refused for, in the order parseMailbox checks (RFC 3629, RFC 6531 3.3, RFC 5321 4.1.2, RFC 5890). */
  const labelError = (label: string): RegExp | undefined => {
    if (/\p{Cs}/u.test(label)) return /unpaired surrogate/;
    if (/[\x80-\x9f]/.test(label)) return /control character/;
    if (octets(label) > 63) return /longer than 63/;
    if (!labelChars(label, true) || label.startsWith("-") || label.endsWith("-")) return /invalid domain label/;
    if (/[^\x00-\x7f]/.test(label) && !/^xn--[a-z0-9-]{1,59}$/.test(domainToASCII(label))) {
      return /not an internationalized label/;
    }
    return undefined;
  };

  it("domain labels and octet counts are what they were", () => {
    for (let i = 0; i < 30_000; i++) {
      const label = text().replaceAll(".", "").replaceAll("@", "") || "a";
      // With SMTPUTF8: without it, non-ASCII is refused before any label is read.
      const result = parseMailbox(`u@${label}.test`, { utf8: true });
      const expected = labelError(label);
      if (expected) assert.match(result.ok ? "ok" : result.error, expected, JSON.stringify(label));
      else assert.ok(result.ok, JSON.stringify(label));
    }
    assert.ok(parseMailbox(`${"\uffff".repeat(21)}@x.test`, { utf8: true }).ok, "U+FFFF is three octets: 63");
    assert.match(
      (parseMailbox(`${"\uffff".repeat(22)}@x.test`, { utf8: true }) as { error: string }).error,
      /local part longer than 64/,
      "66 octets",
    );
    assert.ok(parseMailbox(`u@${"é".repeat(31)}a.test`, { utf8: true }).ok, "63 octets");
    assert.match(
      (parseMailbox(`u@${"é".repeat(32)}.test`, { utf8: true }) as { error: string }).error,
      /longer than 63/,
      "64 octets",
    );
    assert.match(
      (parseMailbox(`u@${"\u{1f600}".repeat(16)}.test`, { utf8: true }) as { error: string }).error,
      /longer than 63/,
      "four octets each: 64",
    );
    assert.ok(parseMailbox(`${"\u{1f600}".repeat(16)}@x.test`, { utf8: true }).ok, "a 64-octet local part");
    assert.match(
      (parseMailbox(`${"\u{1f600}".repeat(16)}a@x.test`, { utf8: true }) as { error: string }).error,
      /local part longer than 64/,
    );
  });
});
