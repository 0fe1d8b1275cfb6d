import { ipToBigInt } from "../core/cidr.ts";
import { isIPv4 } from "../core/address.ts";

/**
 * The name whose PTR record names an address: "4.3.2.1.in-addr.arpa" for
 * 1.2.3.4 (RFC 1035 3.5), and for IPv6 its 32 nibbles reversed under
 * "ip6.arpa" (RFC 3596 2.5). Undefined for anything but an address.
 */
export function reverseName(address: string): string | undefined {
  if (isIPv4(address)) return `${address.split(".").map(Number).reverse().join(".")}.in-addr.arpa`;
  const value = ipToBigInt(address);
  if (value === undefined) return undefined;
  return `${[...value.toString(16).padStart(32, "0")].reverse().join(".")}.ip6.arpa`;
}
