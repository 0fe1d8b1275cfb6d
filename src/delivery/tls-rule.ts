import type { TlsTag } from "../core/tls-tag.ts";

/**
 * The TLS rule a message is delivered under (RFC 8689 4.2):
 * - "requiretls" (4.2.1): verified TLS to a validated host that advertises
 *   REQUIRETLS, or no delivery at all;
 * - "opportunistic" (4.2.2, 8.4): "TLS-Required: No", so as if the relay
 *   did not do MTA-STS: STARTTLS when offered, the certificate unchecked;
 * - "recipient-policy": the recipient domain's MTA-STS policy, as for any mail.
 */
export type TlsRule = "requiretls" | "opportunistic" | "recipient-policy";

export function tlsRuleFor(tag: TlsTag | undefined, mailFrom: string): TlsRule {
  // 4.2.1 binds mail "for which the MAIL FROM return-path is not empty"; a bounce of REQUIRETLS mail
  // "SHOULD NOT" be discarded for lack of REQUIRETLS at the next hop (5): it goes where other mail goes.
  if (tag === "requiretls") return mailFrom === "" ? "recipient-policy" : "requiretls";
  return tag === "optional" ? "opportunistic" : "recipient-policy";
}
