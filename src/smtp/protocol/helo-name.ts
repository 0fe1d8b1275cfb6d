import { isIPv4, isIPv6 } from "../../core/address.ts";

/**
 * Is this a syntactically valid EHLO/HELO argument: a Domain or an
 * address-literal (RFC 5321 4.1.1.1, 4.1.2, 4.1.3)? The server must not
 * refuse a name that does not match the client's address, but it may refuse
 * one that is not a name at all. Underscores are tolerated in labels: many
 * real hosts have them, and refusing them would lose mail, not spam.
 */
export function isValidHeloName(name: string): boolean {
  if (name.startsWith("[")) {
    const literal = /^\[(.*)\]$/.exec(name)?.[1];
    if (literal === undefined) return false;
    if (/^IPv6:/i.test(literal)) return isIPv6(literal.slice(5));
    return isIPv4(literal);
  }
  if (name.length > 255) return false;
  const labels = (name.endsWith(".") ? name.slice(0, -1) : name).split(".");
  return labels.every((label) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label));
}
