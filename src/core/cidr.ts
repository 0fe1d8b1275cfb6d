import { isIP } from "node:net";

/** An address range; addresses are compared as 128-bit numbers, IPv4 mapped into ::ffff:0:0/96. */
export interface Cidr {
  readonly text: string;
  readonly base: bigint;
  readonly mask: bigint;
  /**
   * The same range for IPv4 addresses as 32-bit numbers: `(address & mask) >>> 0 === base`;
   * undefined when it holds no IPv4 address. Clients are mostly IPv4, and
   * comparing them this way needs no BigInt.
   */
  readonly v4: { readonly base: number; readonly mask: number } | undefined;
}

const V4_MAPPED = 0xffffn << 32n;
const LOW_32 = 0xffffffffn;
const ALL_ONES = (1n << 128n) - 1n;

export function ipToBigInt(address: string): bigint | undefined {
  const v4 = ipv4Number(address);
  if (v4 !== undefined) return V4_MAPPED | BigInt(v4);
  if (isIP(address) !== 6) return undefined;
  let text = address;
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail) {
    const n = ipToBigInt(v4Tail[1]!)! & LOW_32;
    text = text.slice(0, -v4Tail[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const headParts = head === "" ? [] : head.split(":");
  const tailParts = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - headParts.length - tailParts.length;
  const groups = [...headParts, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...tailParts];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * An address as text: IPv4, also IPv4-mapped (::ffff:0:0/96, as ipToBigInt
 * stores IPv4), dotted; IPv6 as RFC 5952 4 writes it: lower case, no leading
 * zeros, the longest run of two or more zero groups (the first of equals) as "::".
 */
export function formatIp(value: bigint): string {
  if (value >> 32n === 0xffffn) {
    const n = Number(value & LOW_32);
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let start = -1;
  let length = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > length) [start, length] = [i, j - i];
    i = Math.max(j, i + 1);
  }
  const hex = groups.map((g) => g.toString(16));
  return start < 0 ? hex.join(":") : `${hex.slice(0, start).join(":")}::${hex.slice(start + length).join(":")}`;
}

/** An IPv4 address, dotted ("192.0.2.1") or IPv4-mapped ("::ffff:192.0.2.1"), as a 32-bit number; undefined for anything else. */
export function ipv4Number(address: string): number | undefined {
  return dottedQuad(address, address.startsWith("::ffff:") ? 7 : 0);
}

/** `text` from `from` on as four decimal octets without leading zeros (what isIP calls IPv4), or undefined. */
function dottedQuad(text: string, from: number): number | undefined {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      if (digits === 0 || ++dots > 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else {
      if (code < 48 || code > 57 || (digits > 0 && octet === 0)) return undefined;
      octet = octet * 10 + (code - 48);
      if (++digits > 3 || octet > 255) return undefined;
    }
  }
  return digits === 0 || dots !== 3 ? undefined : value * 256 + octet;
}

export function parseCidr(text: string): Cidr | undefined {
  const parts = text.trim().split("/");
  if (parts.length > 2) return undefined;
  const [address, bitsText] = parts as [string, string | undefined];
  const value = ipToBigInt(address);
  if (value === undefined) return undefined;
  const v4 = isIP(address) === 4;
  const maxBits = v4 ? 32 : 128;
  const bits = bitsText === undefined ? maxBits : /^\d+$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= maxBits)) return undefined;
  const prefix = v4 ? 96 + bits : bits;
  const mask = prefix === 0 ? 0n : (ALL_ONES << BigInt(128 - prefix)) & ALL_ONES;
  const base = value & mask;
  return { text: text.trim(), base, mask, v4: ipv4Part(base, mask) };
}

/** The IPv4 addresses of a range: all or none of ::ffff:0:0/96 above its low 32 bits, a 32-bit range within them. */
function ipv4Part(base: bigint, mask: bigint): Cidr["v4"] {
  if ((V4_MAPPED & mask & ~LOW_32) !== (base & ~LOW_32)) return undefined;
  return { base: Number(base & LOW_32), mask: Number(mask & LOW_32) };
}

export function cidrContains(cidrs: readonly Cidr[], address: string): boolean {
  const v4 = ipv4Number(address);
  if (v4 !== undefined) {
    for (const c of cidrs) if (c.v4 !== undefined && (v4 & c.v4.mask) >>> 0 === c.v4.base) return true;
    return false;
  }
  const value = ipToBigInt(address);
  if (value === undefined) return false;
  return cidrs.some((c) => (value & c.mask) === c.base);
}
