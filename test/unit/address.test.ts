import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatMailbox, isIPv6, parseMailbox } from "../../src/core/address.ts";

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
  });

  it("validates IPv6 forms", () => {
    for (const good of ["::", "::1", "1:2:3:4:5:6:7:8", "1::8", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4"]) assert.ok(isIPv6(good), good);
    for (const no of ["1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", ":1::", "1:::2", "12345::", "1:2:3:4:5:6:7:1.2.3.4"]) assert.ok(!isIPv6(no), no);
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

  it("allows non-ASCII only with SMTPUTF8", () => {
    bad("josé@exämple.test", /SMTPUTF8/);
    assert.deepEqual(ok("josé@EXÄMPLE.test", true), { local: "josé", domain: "exämple.test" });
    bad("a\u0000b@x.test", /not a dot-atom/, true);
  });
});
