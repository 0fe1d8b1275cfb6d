/**
 * The List-Unsubscribe (RFC 2369 3.2) and List-Unsubscribe-Post (RFC 8058)
 * fields of one recipient's copy of a bulk message.
 */

/** The local part that carries a token at RELAY_BOUNCE_DOMAIN: `unsubscribe+<token>@<domain>`. */
export const MAILTO_PREFIX = "unsubscribe+";

/** The path of the unsubscribe endpoint under RELAY_PUBLIC_URL. */
export const unsubscribePath = (token: string) => `/u/${token}`;

export interface UnsubscribeAddresses {
  /** RELAY_PUBLIC_URL, without a trailing slash. */
  readonly publicUrl?: string;
  /** RELAY_BOUNCE_DOMAIN. */
  readonly bounceDomain?: string;
}

/**
 * The https link first (what one-click uses), then the mailto address; the
 * Post field only with the https link (RFC 8058 3.1 wants an https URI).
 * No field when there is neither.
 */
export function listUnsubscribeFields(token: string, at: UnsubscribeAddresses): string[] {
  const uris: string[] = [];
  if (at.publicUrl !== undefined) uris.push(`<${at.publicUrl}${unsubscribePath(token)}>`);
  if (at.bounceDomain !== undefined) uris.push(`<mailto:${MAILTO_PREFIX}${token}@${at.bounceDomain}>`);
  if (uris.length === 0) return [];
  const fields = [`List-Unsubscribe: ${uris.join(",\r\n ")}`];
  if (at.publicUrl !== undefined) fields.push("List-Unsubscribe-Post: List-Unsubscribe=One-Click");
  return fields;
}

/** The token in an address `unsubscribe+<token>@<bounce domain>`; undefined for any other address. */
export function mailtoToken(address: string, bounceDomain: string): string | undefined {
  const at = address.lastIndexOf("@");
  if (at < 0 || address.slice(at + 1).toLowerCase() !== bounceDomain.toLowerCase()) return undefined;
  const local = address.slice(0, at);
  if (!local.toLowerCase().startsWith(MAILTO_PREFIX)) return undefined;
  return local.slice(MAILTO_PREFIX.length);
}
