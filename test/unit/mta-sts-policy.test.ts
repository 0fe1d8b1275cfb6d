import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_MAX_AGE, mxMatches, parsePolicy } from "../../src/delivery/mta-sts/policy.ts";

const crlf = (...lines: string[]) => lines.join("\r\n") + "\r\n";

describe("MTA-STS policy file (RFC 8461 3.2)", () => {
  test("parses a valid policy with CRLF line ends and several mx", () => {
    const result = parsePolicy(
      crlf(
        "version: STSv1",
        "mode: enforce",
        "mx: mail.example.com",
        "mx: *.Example.NET.",
        "mx: backupmx.example.com",
        "max_age: 604800",
      ),
    );
    assert.deepEqual(result, {
      ok: true,
      policy: {
        version: "STSv1",
        mode: "enforce",
        mx: ["mail.example.com", "*.example.net", "backupmx.example.com"],
        maxAge: 604800,
      },
    });
  });

  test("LF line ends, no final line end, spaces after the colon and at the end, blank lines", () => {
    const result = parsePolicy("version:STSv1\nmode:   testing  \n\nmx: mx.example.com\t\nmax_age: 86400");
    assert.deepEqual(result, {
      ok: true,
      policy: { version: "STSv1", mode: "testing", mx: ["mx.example.com"], maxAge: 86400 },
    });
  });

  test("unknown fields are ignored", () => {
    const result = parsePolicy(
      crlf("version: STSv1", "future_field: anything goes, here", "mode: enforce", "mx: mx.example.com", "max_age: 60"),
    );
    assert.ok(result.ok);
    assert.equal(result.policy.mode, "enforce");
  });

  test("mode none needs no mx", () => {
    assert.deepEqual(parsePolicy(crlf("version: STSv1", "mode: none", "max_age: 86400")), {
      ok: true,
      policy: { version: "STSv1", mode: "none", mx: [], maxAge: 86400 },
    });
  });

  test("missing required fields make the policy invalid", () => {
    const cases: Record<string, string> = {
      version: crlf("mode: enforce", "mx: mx.example.com", "max_age: 60"),
      mode: crlf("version: STSv1", "mx: mx.example.com", "max_age: 60"),
      max_age: crlf("version: STSv1", "mode: enforce", "mx: mx.example.com"),
      mx: crlf("version: STSv1", "mode: enforce", "max_age: 60"),
    };
    for (const [field, text] of Object.entries(cases)) {
      const result = parsePolicy(text);
      assert.ok(!result.ok, field);
      assert.match(result.reason, new RegExp(field), field);
    }
    assert.equal(parsePolicy("").ok, false);
  });

  test("bad mode and bad version, case-sensitive names and values", () => {
    const base = (mode: string, version = "STSv1") =>
      crlf(`version: ${version}`, `mode: ${mode}`, "mx: mx.example.com", "max_age: 60");
    for (const mode of ["enforcing", "Enforce", "ENFORCE", "report", ""]) {
      assert.equal(parsePolicy(base(mode)).ok, false, mode);
    }
    assert.equal(parsePolicy(base("enforce", "STSv2")).ok, false);
    assert.equal(parsePolicy(base("enforce", "stsv1")).ok, false);
    // "Mode" is an unknown field, so mode is missing.
    assert.equal(parsePolicy(crlf("version: STSv1", "Mode: enforce", "mx: mx.example.com", "max_age: 60")).ok, false);
  });

  test("max_age bounds: 0 and 31557600 are valid; more, negative, non-digits and 11 digits are not", () => {
    const withAge = (age: string) =>
      parsePolicy(crlf("version: STSv1", "mode: enforce", "mx: mx.example.com", `max_age: ${age}`));
    const zero = withAge("0");
    assert.ok(zero.ok && zero.policy.maxAge === 0);
    const max = withAge(String(MAX_MAX_AGE));
    assert.ok(max.ok && max.policy.maxAge === 31_557_600);
    for (const bad of [String(MAX_MAX_AGE + 1), "-1", "1e3", "86400s", " ", "01234567890", "9999999999"]) {
      assert.equal(withAge(bad).ok, false, bad);
    }
  });

  test("repeated version, mode or max_age, malformed lines and bad mx values are invalid", () => {
    const ok = ["version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 60"];
    for (
      const extra of [
        "mode: testing",
        "max_age: 60",
        "version: STSv1",
        "no colon here",
        " mode: enforce",
        "mx: *",
        "mx: mx.*.example.com",
        "mx: bad_host.example.com",
        "mx: -a.example.com",
        "mx:",
      ]
    ) {
      assert.equal(parsePolicy(crlf(...ok, extra)).ok, false, extra);
    }
    assert.equal(
      parsePolicy("version: STSv1\rmode: enforce\r\nmx: mx.example.com\r\nmax_age: 60\r\n").ok,
      false,
      "bare CR",
    );
  });
});

describe("MX host matching (RFC 8461 4.1)", () => {
  const policy = { mx: ["mail.example.org", "*.example.com"] };

  test("exact names match, case-insensitively, ignoring a trailing dot", () => {
    assert.ok(mxMatches(policy, "mail.example.org"));
    assert.ok(mxMatches(policy, "MAIL.Example.ORG."));
    assert.ok(!mxMatches(policy, "mail2.example.org"));
    assert.ok(!mxMatches(policy, "example.org"));
    assert.ok(!mxMatches(policy, "a.mail.example.org"));
  });

  test("*.example.com matches exactly one left-most label", () => {
    assert.ok(mxMatches(policy, "mx.example.com"));
    assert.ok(mxMatches(policy, "MX.EXAMPLE.COM."));
    assert.ok(!mxMatches(policy, "a.b.example.com"));
    assert.ok(!mxMatches(policy, "example.com"));
    assert.ok(!mxMatches(policy, ".example.com"));
    assert.ok(!mxMatches(policy, "mxexample.com"));
    assert.ok(!mxMatches(policy, "mx.example.com.evil.test"));
  });

  test("patterns from a parsed policy with upper case and trailing dots", () => {
    const parsed = parsePolicy("version: STSv1\nmode: enforce\nmx: *.MAIL.Example.\nmax_age: 60\n");
    assert.ok(parsed.ok);
    assert.ok(mxMatches(parsed.policy, "eu.mail.example"));
    assert.ok(!mxMatches(parsed.policy, "mail.example"));
  });

  test("an empty host never matches", () => {
    assert.ok(!mxMatches(policy, ""));
    assert.ok(!mxMatches(policy, "."));
  });
});
