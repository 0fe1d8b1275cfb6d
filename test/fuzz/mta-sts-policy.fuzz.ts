/** Jazzer.js target (scripts/fuzz.ts): the MTA-STS policy file and the MTA-STS and TLSRPT TXT records. */
import { MAX_MAX_AGE, parsePolicy } from "../../src/delivery/mta-sts/policy.ts";
import { parseStsRecord } from "../../src/delivery/mta-sts/record.ts";
import { parseTlsRptRecord } from "../../src/delivery/tls-report/record.ts";
import { check } from "./check.ts";

export function fuzz(data: Buffer): void {
  const text = data.toString("utf8");
  const policy = parsePolicy(text);
  if (policy.ok) {
    const { mode, maxAge, mx } = policy.policy;
    check(maxAge >= 0 && maxAge <= MAX_MAX_AGE, "max_age range");
    check(mode === "none" || mx.length > 0, "mx required");
  }
  for (const result of [policy, parseStsRecord(text), parseTlsRptRecord(text)]) {
    if (!result.ok) check(result.reason.length > 0, "reason without text");
  }
}
