/**
 * How a message is tagged at receipt for TLS on its onward relay (RFC 8689 4.1):
 * - "requiretls": REQUIRETLS was given on MAIL FROM (or `require_tls` in the
 *   HTTP API); it is relayed only over TLS meeting RFC 8689 4.2.1, or bounced.
 * - "optional": it carries "TLS-Required: No" without REQUIRETLS; the
 *   recipient domain's TLS policy (MTA-STS) is ignored, TLS stays
 *   opportunistic (RFC 8689 4.2.2).
 * Untagged mail follows the recipient domain's policy, as always.
 */
export const tlsTags = ["requiretls", "optional"] as const;
export type TlsTag = (typeof tlsTags)[number];
