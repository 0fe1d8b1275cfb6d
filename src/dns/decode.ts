/** Message decoding (RFC 1035 4.1) with bounds checks: malformed input gives an error value, never a throw. */
import { type Decoded, readName } from "./name.ts";
import { type Header, type Message, type Question, type RecordData, type ResourceRecord, typeName } from "./types.ts";

export type DecodeResult = { ok: true; message: Message } | { ok: false; error: string; header?: Header };

const text = new TextDecoder("utf-8", { fatal: false });

function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** The 12-byte header (RFC 1035 4.1.1), or undefined when the message is shorter. */
export function decodeHeader(b: Uint8Array): Header | undefined {
  if (b.length < 12) return undefined;
  const flags = u16(b, 2);
  return {
    id: u16(b, 0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
  };
}

export function decodeMessage(b: Uint8Array): DecodeResult {
  const header = decodeHeader(b);
  if (!header) return { ok: false, error: `message of ${b.length} bytes is shorter than a header` };
  const fail = (error: string): DecodeResult => ({ ok: false, error, header });
  const counts = [u16(b, 4), u16(b, 6), u16(b, 8), u16(b, 10)] as const;
  let pos = 12;
  const questions: Question[] = [];
  for (let i = 0; i < counts[0]; i++) {
    const name = readName(b, pos);
    if (!name.ok) return fail(`question ${i}: ${name.error}`);
    if (name.end + 4 > b.length) return fail(`question ${i} is truncated`);
    questions.push({ name: name.value, type: u16(b, name.end), class: u16(b, name.end + 2) });
    pos = name.end + 4;
  }
  const sections: ResourceRecord[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const rr = readRecord(b, pos);
      if (!rr.ok) return fail(`${["answer", "authority", "additional"][s]} ${i}: ${rr.error}`);
      sections[s]!.push(rr.value);
      pos = rr.end;
    }
  }
  const [answers, authorities, additionals] = sections as [ResourceRecord[], ResourceRecord[], ResourceRecord[]];
  return { ok: true, message: { header, questions, answers, authorities, additionals } };
}

/** One resource record (RFC 1035 4.1.3); RDATA must be consumed exactly. */
function readRecord(b: Uint8Array, at: number): Decoded<ResourceRecord> {
  const name = readName(b, at);
  if (!name.ok) return name;
  const fixed = name.end;
  if (fixed + 10 > b.length) return { ok: false, error: "record header is truncated" };
  const code = u16(b, fixed);
  const rdStart = fixed + 10;
  const rdEnd = rdStart + u16(b, fixed + 8);
  if (rdEnd > b.length) return { ok: false, error: "RDATA runs past the message end" };
  const data = readRdata(b, code, rdStart, rdEnd);
  if (typeof data === "string") return { ok: false, error: `${typeName(code)} ${data}` };
  return {
    ok: true,
    end: rdEnd,
    value: { ...data, name: name.value, class: u16(b, fixed + 2), ttl: ttlOf(u32(b, fixed + 4)) },
  };
}

/** RFC 2181 8: a TTL with the top bit set is treated as zero. */
function ttlOf(raw: number): number {
  return raw > 0x7fffffff ? 0 : raw;
}

function readRdata(b: Uint8Array, code: number, start: number, end: number): RecordData | string {
  const len = end - start;
  const rdata = b.slice(start, end);
  // Names inside RDATA may point backward anywhere, but their own bytes must stay inside RDATA.
  const nameAt = (at: number): Decoded<string> => readName(b.subarray(0, end), at);
  switch (typeName(code)) {
    case "A":
      return len === 4 ? { type: "A", address: Array.from(rdata).join(".") } : `RDATA is ${len} bytes, not 4`;
    case "AAAA":
      return len === 16 ? { type: "AAAA", address: formatIpv6(rdata) } : `RDATA is ${len} bytes, not 16`;
    case "MX": {
      if (len < 3) return "RDATA is too short";
      const n = nameAt(start + 2);
      if (!n.ok) return n.error;
      return n.end === end ? { type: "MX", preference: u16(b, start), exchange: n.value } : "RDATA length mismatch";
    }
    case "CNAME":
    case "NS":
    case "PTR": {
      const n = nameAt(start);
      if (!n.ok) return n.error;
      const type = typeName(code) as "CNAME" | "NS" | "PTR";
      return n.end === end ? { type, target: n.value } : "RDATA length mismatch";
    }
    case "TXT": {
      // One or more <character-string>s: a length octet and that many octets (RFC 1035 3.3, 3.3.14).
      const strings: string[] = [];
      let pos = start;
      while (pos < end) {
        const n = b[pos]!;
        if (pos + 1 + n > end) return "character-string runs past RDATA";
        strings.push(text.decode(b.subarray(pos + 1, pos + 1 + n)));
        pos += 1 + n;
      }
      return strings.length > 0 ? { type: "TXT", strings } : "RDATA is empty";
    }
    case "SOA": {
      const m = nameAt(start);
      if (!m.ok) return m.error;
      const r = nameAt(m.end);
      if (!r.ok) return r.error;
      if (r.end + 20 !== end) return "RDATA length mismatch";
      const [serial, refresh, retry, expire, minimum] = [0, 4, 8, 12, 16].map((o) => u32(b, r.end + o)) as [
        number,
        number,
        number,
        number,
        number,
      ];
      return { type: "SOA", mname: m.value, rname: r.value, serial, refresh, retry, expire, minimum };
    }
    case "OPT":
      return { type: "OPT", rdata };
    default:
      return { type: "UNKNOWN", code, rdata };
  }
}

/** RFC 5952 text: lower-case, leading zeros dropped, the longest run (2+) of zero groups as "::". */
export function formatIpv6(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}
