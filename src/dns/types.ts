/** DNS message model (RFC 1035 section 4) shared by the codec, client and fixtures. */

/** TYPE values, RFC 1035 3.2.2; AAAA RFC 3596; OPT RFC 6891. */
export const RecordTypes = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, OPT: 41 } as const;
export type RecordType = keyof typeof RecordTypes;

export function typeCode(type: RecordType): number {
  return RecordTypes[type];
}

export function typeName(code: number): RecordType | `TYPE${number}` {
  for (const [name, value] of Object.entries(RecordTypes)) if (value === code) return name as RecordType;
  return `TYPE${code}`;
}

/** CLASS IN, RFC 1035 3.2.4. */
export const CLASS_IN = 1;

/** RCODE values, RFC 1035 4.1.1. */
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface Question {
  /** Without the trailing dot; the root is ".". */
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export type RecordData =
  | { readonly type: "A"; readonly address: string }
  | { readonly type: "AAAA"; readonly address: string }
  | { readonly type: "MX"; readonly preference: number; readonly exchange: string }
  /** One record's character-strings (RFC 1035 3.3.14), kept apart. */
  | { readonly type: "TXT"; readonly strings: readonly string[] }
  | { readonly type: "CNAME" | "NS" | "PTR"; readonly target: string }
  | {
    readonly type: "SOA";
    readonly mname: string;
    readonly rname: string;
    readonly serial: number;
    readonly refresh: number;
    readonly retry: number;
    readonly expire: number;
    readonly minimum: number;
  }
  /** EDNS0 pseudo-record, RFC 6891 6.1.2: its CLASS is the UDP payload size. */
  | { readonly type: "OPT"; readonly rdata: Uint8Array }
  | { readonly type: "UNKNOWN"; readonly code: number; readonly rdata: Uint8Array };

export type ResourceRecord = RecordData & {
  readonly name: string;
  readonly class: number;
  readonly ttl: number;
};

export interface Header {
  readonly id: number;
  readonly qr: boolean;
  readonly opcode: number;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly rd: boolean;
  readonly ra: boolean;
  readonly rcode: number;
}

export interface Message {
  readonly header: Header;
  readonly questions: readonly Question[];
  readonly answers: readonly ResourceRecord[];
  readonly authorities: readonly ResourceRecord[];
  readonly additionals: readonly ResourceRecord[];
}

/** Errors a lookup can end in; NXDOMAIN and NODATA are answers, the rest are failures to get one. */
export type DnsError = "NXDOMAIN" | "NODATA" | "SERVFAIL" | "REFUSED" | "TIMEOUT" | "FORMERR" | "NETWORK";

/** A lookup's outcome as a value. `ttl` is in seconds; on NXDOMAIN/NODATA it is the negative TTL (RFC 2308 5) when known. */
export type DnsResult<T> =
  | { readonly ok: true; readonly answers: T; readonly ttl: number }
  | { readonly ok: false; readonly error: DnsError; readonly ttl?: number; readonly detail?: string };

/** Lower-case, without the trailing dot ("." stays the root). */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.length > 1 && lower.endsWith(".") ? lower.slice(0, -1) : lower === "" ? "." : lower;
}
