import { type Cidr, cidrContains, parseCidr } from "./cidr.ts";

/**
 * Addresses that name no host on the public Internet, from the IANA
 * special-purpose registries (RFC 6890): `internal` ones lead into a host or
 * its own networks, `undeliverable` ones to no single host that could take
 * a TCP connection.
 */
export interface IpScope {
  readonly range: string;
  readonly name: string;
  readonly kind: "internal" | "undeliverable";
}

const SCOPES: readonly (IpScope & { readonly cidr: Cidr })[] = (
  [
    ["0.0.0.0/8", 'an unspecified ("this network") address', "internal"], // RFC 1122 3.2.1.3; connecting to it reaches the host itself
    ["10.0.0.0/8", "a private address", "internal"], // RFC 1918
    ["100.64.0.0/10", "a shared (carrier-grade NAT) address", "internal"], // RFC 6598
    ["127.0.0.0/8", "a loopback address", "internal"], // RFC 1122 3.2.1.3
    ["169.254.0.0/16", "a link-local address", "internal"], // RFC 3927
    ["172.16.0.0/12", "a private address", "internal"], // RFC 1918
    ["192.168.0.0/16", "a private address", "internal"], // RFC 1918
    ["224.0.0.0/4", "a multicast address", "undeliverable"], // RFC 5771
    ["240.0.0.0/4", "a reserved or broadcast address", "undeliverable"], // RFC 1112 4, RFC 919 7
    ["::/128", "the unspecified address", "internal"], // RFC 4291 2.5.2
    ["::1/128", "the loopback address", "internal"], // RFC 4291 2.5.3
    ["::/96", "a deprecated IPv4-compatible address", "undeliverable"], // RFC 4291 2.5.5.1
    ["fc00::/7", "a unique local (private) address", "internal"], // RFC 4193
    ["fe80::/10", "a link-local address", "internal"], // RFC 4291 2.5.6
    ["fec0::/10", "a site-local (private) address", "internal"], // RFC 3879
    ["ff00::/8", "a multicast address", "undeliverable"], // RFC 4291 2.7
  ] as const
).map(([range, name, kind]) => ({ range, name, kind, cidr: parseCidr(range)! }));

/**
 * What a special-purpose address is; undefined for an address of a public
 * host (or text that is no address). IPv4-mapped IPv6 (::ffff:127.0.0.1) is
 * the IPv4 address it maps (cidr.ts compares IPv4 in that form).
 */
export function ipScope(address: string): IpScope | undefined {
  const found = SCOPES.find((s) => cidrContains([s.cidr], address));
  return found && { range: found.range, name: found.name, kind: found.kind };
}
