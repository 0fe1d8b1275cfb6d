/**
 * What REQUIRETLS (RFC 8689 4.2.1) asks of each host of a destination:
 *
 * - step 2: a host name that came from the recipient domain's MX records
 *   must be validated by a DNSSEC signature or by an MTA-STS policy
 *   (RFC 8461 4.1). Our resolver does not validate DNSSEC, so only a
 *   policy can: one in force (testing or enforce) whose mx patterns list the
 *   host. A domain without one gets no REQUIRETLS mail.
 * - step 4: STARTTLS with a certificate verified for that host name (the
 *   path MTA-STS enforce uses);
 * - step 5: REQUIRETLS in the EHLO reply after STARTTLS (the transport checks it).
 *
 * Names that did not come from MX records need no validation: the domain
 * used as its own MX (step 4: "the domain name in the absence of an MX
 * record"), and a static route (RELAY_ROUTES), which the operator named; the
 * certificate must still be valid for that name.
 */
import { mxMatches, type StsResult } from "./mta-sts/index.ts";
import { normalizeHost } from "./mta-sts/policy.ts";
import type { TargetHost } from "./route.ts";
import type { TlsRequirement } from "./smtp-transport.ts";

/** Where a destination's host names come from. */
export type HostNames =
  | { readonly from: "static-route" }
  | { readonly from: "implicit-mx" }
  | { readonly from: "mx"; readonly sts: StsResult };

/** The REQUIRETLS part of a destination key: what decides which hosts qualify (not the policy's mode nor id). */
export function requireTlsKey(names: HostNames): string {
  if (names.from !== "mx") return `requiretls:${names.from}`;
  return `requiretls:mx:${names.sts.mode === "none" ? "" : [...names.sts.policy.mx].sort().join(",")}`;
}

/** Verified TLS for a host that qualifies; a refusal naming why for one that does not. */
export function requireTlsFor(names: HostNames): (host: TargetHost) => TlsRequirement {
  return (host) => {
    if (names.from !== "mx") return { mode: "required", servername: host.name };
    const { sts } = names;
    if (sts.mode === "none") {
      return {
        mode: "refuse",
        reason: `REQUIRETLS: no MTA-STS policy validates MX host ${host.name} (DNSSEC is not checked here)`,
      };
    }
    const name = normalizeHost(host.name);
    if (!mxMatches(sts.policy, name)) {
      const listed = sts.policy.mx.join(", ");
      return {
        mode: "refuse",
        reason: `REQUIRETLS: MX host ${name} is not listed by the MTA-STS policy (mx: ${listed})`,
      };
    }
    return { mode: "required", servername: name };
  };
}
