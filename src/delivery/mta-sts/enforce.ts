/**
 * What a policy asks of one delivery attempt to one MX host (RFC 8461 4, 5).
 *
 * - enforce: the MX host must match one of the policy's mx patterns (4.1),
 *   and the connection must use STARTTLS with a certificate that chains to a
 *   trusted root and is valid for the MX host name (4.2). A host that fails
 *   is not delivered to (5); when every host fails, the message is deferred,
 *   never bounced before the TXT record was checked for a new policy (5.1
 *   step 3): calling `policyFor` again on the next attempt does that.
 * - testing: deliver as without a policy, but report failures (5): `report`
 *   carries the text of an MX mismatch, `verifyAs` the name a certificate
 *   would have to be valid for, to be checked and reported (RFC 8460), not
 *   required.
 * - none: as if the domain had no policy (5, 8.3).
 */
import type { StsResult } from "./discover.ts";
import { mxMatches, normalizeHost } from "./policy.ts";

export type TlsRequirement =
  | { readonly tls: "opportunistic"; readonly report?: string; readonly verifyAs?: string }
  | { readonly tls: "required"; readonly verify: true; readonly servername: string }
  | { readonly refuse: string };

export function tlsRequirement(sts: StsResult, mxHost: string): TlsRequirement {
  if (sts.mode === "none") return { tls: "opportunistic" };
  const host = normalizeHost(mxHost);
  const matches = mxMatches(sts.policy, host);
  const mismatch = `MX host ${host} does not match the MTA-STS policy (id ${sts.id}, mode ${sts.mode}, mx: ${
    sts.policy.mx.join(", ")
  }) (RFC 8461 4.1)`;
  if (sts.mode === "testing") {
    return matches
      ? { tls: "opportunistic", verifyAs: host }
      : { tls: "opportunistic", report: mismatch, verifyAs: host };
  }
  if (!matches) return { refuse: `${mismatch}; not delivering to it` };
  return { tls: "required", verify: true, servername: host };
}
