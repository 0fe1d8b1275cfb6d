/**
 * Fuzzing the MTA-STS policy parser (src/delivery/mta-sts/policy.ts), which
 * reads a body any policy host may serve: over random text and mutations of
 * valid policies it returns a policy or a reason, never throws, and what it
 * accepts obeys RFC 8461 3.2. RELAY_FUZZ_RUNS=N scales the runs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MAX_MAX_AGE, mxMatches, parsePolicy } from "../../src/delivery/mta-sts/policy.ts";
import { parseStsRecord } from "../../src/delivery/mta-sts/record.ts";
import { parseTlsRptRecord } from "../../src/delivery/tls-report/record.ts";
import { mutatedText, runs, trickyText } from "../helpers/fuzz.ts";

const eol = fc.constantFrom("\r\n", "\n");
const field = fc.oneof(
  fc.constantFrom("version: STSv1", "mode: enforce", "mode: testing", "mode: none", "max_age: 86400"),
  fc.constantFrom("mx: mx.example.com", "mx: *.example.net", "mx: MX2.Example.Org.", "x-ext: some value"),
);
const policyText = fc.tuple(fc.array(field, { maxLength: 8 }), eol).map(([fields, end]) =>
  ["version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 604800", ...fields].join(end)
);

function check(text: string): void {
  const result = parsePolicy(text);
  if (!result.ok) return assert.ok(result.reason.length > 0);
  const { policy } = result;
  assert.ok(["enforce", "testing", "none"].includes(policy.mode));
  assert.ok(Number.isInteger(policy.maxAge) && policy.maxAge >= 0 && policy.maxAge <= MAX_MAX_AGE);
  assert.ok(policy.mode === "none" || policy.mx.length > 0);
  for (const pattern of policy.mx) {
    assert.equal(pattern, pattern.toLowerCase());
    assert.ok(!pattern.endsWith("."));
    // A pattern matches the host it names (a wildcard: one label more).
    assert.ok(mxMatches(policy, pattern.replace(/^\*\./, "any.")));
  }
}

describe("MTA-STS policy parsing under fuzzing", () => {
  it("random text gives a policy or a reason", () => {
    fc.assert(fc.property(trickyText(":\r\n \t*.", 200), check), runs(500));
  });

  it("mutated policies give a policy or a reason", () => {
    fc.assert(fc.property(mutatedText(policyText), check), runs(1000));
  });

  // Finding: trimming a value with /[ \t]+$/ backtracks quadratically; 64 kB (the fetch limit) took 4 s.
  it("regression: a value with a long run of inner blanks is read in linear time", () => {
    const result = parsePolicy(`version: STSv1\nmode: a${" ".repeat(1 << 20)}b\n`);
    assert.equal(result.ok, false);
  });

  // The same trim served the TXT records (RFC 8461 3.1, RFC 8460 3), from anyone's DNS.
  it("regression: a TXT record field with a long run of inner blanks is read in linear time", () => {
    const blanks = " ".repeat(1 << 20);
    assert.equal(parseStsRecord(`v=STSv1; id=a${blanks}b`).ok, false);
    assert.equal(parseTlsRptRecord(`v=TLSRPTv1; rua=mailto:a@example.com${blanks}b`).ok, false);
  });

  it("MTA-STS and TLSRPT records: random and mutated text gives a result", () => {
    const record = fc.constantFrom(
      "v=STSv1; id=20240101T000000;",
      "v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example",
    );
    fc.assert(
      fc.property(fc.oneof(trickyText("=; \t,", 80), mutatedText(record)), (text) => {
        for (const result of [parseStsRecord(text), parseTlsRptRecord(text)]) {
          if (!result.ok) assert.ok(result.reason.length > 0);
        }
      }),
      runs(1000),
    );
  });
});
