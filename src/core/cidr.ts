import { isIP } from "node:net";

/** An address range; addresses are compared as 128-bit numbers, IPv4 mapped into ::ffff:0:0/96. */
export interface Cidr {
  readonly text: string;
  readonly base: bigint;
  readonly mask: bigint;
}

const V4_MAPPED = 0xffffn << 32n;
const ALL_ONES = (1n << 128n) - 1n;

export function ipToBigInt(address: string): bigint | undefined {
  const plain = address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(plain);
  if (family === 4) {
    return plain.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n) | V4_MAPPED;
  }
  if (family !== 6) return undefined;
  let text = plain;
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail) {
    const n = ipToBigInt(v4Tail[1]!)! & 0xffffffffn;
    text = text.slice(0, -v4Tail[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const headParts = head === "" ? [] : head.split(":");
  const tailParts = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - headParts.length - tailParts.length;
  const groups = [...headParts, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...tailParts];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
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
  return { text: text.trim(), base: value & mask, mask };
}

export function cidrContains(cidrs: readonly Cidr[], address: string): boolean {
  const value = ipToBigInt(address);
  if (value === undefined) return false;
  return cidrs.some((c) => (value & c.mask) === c.base);
}
