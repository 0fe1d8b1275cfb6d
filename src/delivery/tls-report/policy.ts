/**
 * The policy a domain's sessions are counted under: the "policy" object of
 * an aggregate report (RFC 8460 4.4).
 */
import type { StsResult } from "../mta-sts/index.ts";
import type { TlsResultType } from "./result-type.ts";
import type { TlsFailure } from "./session.ts";

export type ReportPolicy =
  /** An MTA-STS policy in force (testing or enforce), as applied. */
  | { readonly type: "sts"; readonly policyString: readonly string[]; readonly mxHost: readonly string[] }
  /**
   * The domain announces an MTA-STS policy (a `_mta-sts` record) that could
   * not be had: every session counts as failed with this policy failure
   * (RFC 8460 4.3.2.2), whatever its TLS was.
   */
  | { readonly type: "sts"; readonly failure: TlsFailure }
  /** Neither an MTA-STS policy nor DANE (which the relay does not do). */
  | { readonly type: "no-policy-found" };

const POLICY_FAILURE: Record<NonNullable<StsResult["problemKind"]>, TlsResultType> = {
  "fetch-error": "sts-policy-fetch-error",
  invalid: "sts-policy-invalid",
  "webpki-invalid": "sts-webpki-invalid",
};

/** Longest failure-reason-code kept: policy problems quote URLs and server answers. */
const MAX_REASON = 200;

export function reportPolicyOf(sts: StsResult): ReportPolicy {
  if (sts.mode === "none") {
    if (sts.problemKind === undefined) return { type: "no-policy-found" };
    return {
      type: "sts",
      failure: { resultType: POLICY_FAILURE[sts.problemKind], reasonCode: (sts.problem ?? "").slice(0, MAX_REASON) },
    };
  }
  const { policy } = sts;
  // "policy-string": the policy's lines (RFC 8461 3.2), rebuilt from what was parsed and applied.
  const policyString = [
    "version: STSv1",
    `mode: ${policy.mode}`,
    ...policy.mx.map((mx) => `mx: ${mx}`),
    `max_age: ${policy.maxAge}`,
  ];
  return { type: "sts", policyString, mxHost: policy.mx };
}
