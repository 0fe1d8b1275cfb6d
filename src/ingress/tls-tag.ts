import type { TlsTag } from "../core/tls-tag.ts";
import { headerValues } from "../core/header-section.ts";

/**
 * The RFC 8689 4.1 tag of a message at receipt: REQUIRETLS wins, and then
 * the TLS-Required header field "MUST be ignored" (it stays in the message,
 * as the RFC allows); otherwise one "TLS-Required: No" field (RFC 8689 3:
 * `"TLS-Required:" [FWS] "No"`) tags it optional. A message with more than
 * one such field breaks "MUST NOT appear more than once" and is not tagged.
 */
export function tlsTagOf(requireTls: boolean, message: Uint8Array): TlsTag | undefined {
  if (requireTls) return "requiretls";
  const fields = tlsRequiredFields(message);
  return fields.length === 1 && /^No$/i.test(fields[0]!) ? "optional" : undefined;
}

/** The unfolded values of every TLS-Required field, without the blanks around them. */
function tlsRequiredFields(message: Uint8Array): string[] {
  return headerValues(message, "tls-required").map((value) => value.trim());
}
