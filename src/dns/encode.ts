/** Message encoding (RFC 1035 4.1), compressing names; EDNS0 OPT per RFC 6891. */
import { ipToBigInt } from "../core/cidr.ts";
import { NameWriter } from "./name.ts";
import {
  CLASS_IN,
  type Header,
  type Message,
  type RecordData,
  type RecordType,
  RecordTypes,
  type ResourceRecord,
  typeCode,
} from "./types.ts";

/** Payload size to advertise: the DNS Flag Day 2020 value that avoids IP fragmentation. */
export const EDNS_UDP_SIZE = 1232;

const utf8 = new TextEncoder();

class Out {
  readonly bytes: number[] = [];
  readonly names = new NameWriter();
  u16(v: number): void {
    this.bytes.push((v >> 8) & 0xff, v & 0xff);
  }
  u32(v: number): void {
    this.u16((v >>> 16) & 0xffff);
    this.u16(v & 0xffff);
  }
  name(n: string): void {
    this.bytes.push(...this.names.encode(n, this.bytes.length));
  }
}

function flags(h: Header): number {
  return (
    (h.qr ? 0x8000 : 0) | ((h.opcode & 0xf) << 11) | (h.aa ? 0x0400 : 0) | (h.tc ? 0x0200 : 0) |
    (h.rd ? 0x0100 : 0) | (h.ra ? 0x0080 : 0) | (h.rcode & 0xf)
  );
}

/** Throws RangeError for values that cannot be encoded (bad names, strings over 255 octets, bad addresses). */
export function encodeMessage(m: Message): Uint8Array {
  const out = new Out();
  out.u16(m.header.id);
  out.u16(flags(m.header));
  for (const n of [m.questions.length, m.answers.length, m.authorities.length, m.additionals.length]) out.u16(n);
  for (const q of m.questions) {
    out.name(q.name);
    out.u16(q.type);
    out.u16(q.class);
  }
  for (const rr of [...m.answers, ...m.authorities, ...m.additionals]) writeRecord(out, rr);
  return Uint8Array.from(out.bytes);
}

function writeRecord(out: Out, rr: ResourceRecord): void {
  out.name(rr.name);
  out.u16(rr.type === "UNKNOWN" ? rr.code : typeCode(rr.type));
  out.u16(rr.class);
  out.u32(rr.ttl);
  const lengthAt = out.bytes.length;
  out.u16(0);
  writeRdata(out, rr);
  const len = out.bytes.length - lengthAt - 2;
  if (len > 0xffff) throw new RangeError(`RDATA of ${rr.name} is ${len} bytes`);
  out.bytes[lengthAt] = len >> 8;
  out.bytes[lengthAt + 1] = len & 0xff;
}

function writeRdata(out: Out, d: RecordData): void {
  switch (d.type) {
    case "A":
    case "AAAA": {
      const v = ipToBigInt(d.address);
      const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(d.address);
      if (v === undefined || (d.type === "A") !== v4) throw new RangeError(`not an ${d.type} address: "${d.address}"`);
      const n = d.type === "A" ? 4 : 16;
      for (let i = n - 1; i >= 0; i--) out.bytes.push(Number((v >> BigInt(8 * i)) & 0xffn));
      return;
    }
    case "MX":
      out.u16(d.preference);
      out.name(d.exchange);
      return;
    case "CNAME":
    case "NS":
    case "PTR":
      out.name(d.target);
      return;
    case "TXT":
      for (const s of d.strings) {
        const b = utf8.encode(s);
        if (b.length > 255) throw new RangeError(`TXT character-string of ${b.length} octets (max 255)`);
        out.bytes.push(b.length, ...b);
      }
      return;
    case "SOA":
      out.name(d.mname);
      out.name(d.rname);
      for (const v of [d.serial, d.refresh, d.retry, d.expire, d.minimum]) out.u32(v);
      return;
    case "OPT":
    case "UNKNOWN":
      out.bytes.push(...d.rdata);
      return;
  }
}

/** A recursive query (RD set) for one question, with an EDNS0 OPT record unless `edns` is false. */
export function encodeQuery(id: number, name: string, type: RecordType, edns = true): Uint8Array {
  const opt: ResourceRecord = { type: "OPT", name: ".", class: EDNS_UDP_SIZE, ttl: 0, rdata: new Uint8Array() };
  return encodeMessage({
    header: { id, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, rcode: 0 },
    questions: [{ name, type: RecordTypes[type], class: CLASS_IN }],
    answers: [],
    authorities: [],
    additionals: edns ? [opt] : [],
  });
}
