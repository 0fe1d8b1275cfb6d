import type { TlsTag } from "../core/tls-tag.ts";
import { headerSectionEnd } from "./headers.ts";

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

const latin1 = new TextDecoder("latin1");

/** The unfolded values of every TLS-Required field in the header section (RFC 5322 2.2.3). */
function tlsRequiredFields(message: Uint8Array): string[] {
  const head = latin1.decode(message.subarray(0, headerSectionEnd(message)));
  // Unfolding takes out only a CRLF before a blank, so it cannot join the name up from two lines.
  if (!/TLS-Required/i.test(head)) return [];
  const unfolded = head.replace(/\r\n(?=[ \t])/g, "");
  return [...unfolded.matchAll(/^TLS-Required[ \t]*:(.*)$/gim)].map((m) => m[1]!.trim());
}
