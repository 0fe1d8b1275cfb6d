/** Stub resolver client: one question to the configured recursive servers (RFC 1035 7, RFC 1123 6.1.3). */
import { randomInt } from "node:crypto";
import type { HostPort } from "../core/host-port.ts";
import { decodeHeader, decodeMessage } from "./decode.ts";
import { encodeQuery } from "./encode.ts";
import { isValidName } from "./name.ts";
import { systemNameservers } from "./resolv-conf.ts";
import { type Exchange, exchangeTcp, exchangeUdp } from "./transport.ts";
import {
  CLASS_IN,
  type DnsError,
  type Message,
  normalizeName,
  Rcode,
  type RecordType,
  RecordTypes,
  type ResourceRecord,
} from "./types.ts";

export interface DnsClientOptions {
  /** Recursive servers, tried in order; none: the nameservers of /etc/resolv.conf. */
  readonly servers?: readonly HostPort[];
  /** Wait for one reply from one server; default 2000 ms. */
  readonly timeoutMs?: number;
  /** Rounds over all servers; default 2 (resolv.conf's default "attempts"). */
  readonly attempts?: number;
  /** Source of query ids; default a CSPRNG, as ids are part of spoofing resistance (RFC 5452). */
  readonly randomId?: () => number;
}

/** The answer section as is (CNAMEs included); `ttl` is its smallest TTL, or the negative TTL on NXDOMAIN/NODATA. */
export type QueryResult =
  | {
    readonly ok: true;
    readonly answers: readonly ResourceRecord[];
    readonly ttl: number;
    readonly negativeTtl?: number;
  }
  | { readonly ok: false; readonly error: DnsError; readonly ttl?: number; readonly detail?: string };

export interface DnsClient {
  query(name: string, type: RecordType): Promise<QueryResult>;
}

type Failure = Extract<QueryResult, { ok: false }>;
/** Errors that say "this server could not answer": the next server is asked. */
const NEXT_SERVER = new Set<DnsError>(["SERVFAIL", "REFUSED", "FORMERR", "NETWORK", "TIMEOUT"]);
/** When every server failed, the most informative failure is reported. */
const RANK: readonly DnsError[] = ["TIMEOUT", "NETWORK", "FORMERR", "REFUSED", "SERVFAIL"];

export function createDnsClient(options: DnsClientOptions = {}): DnsClient {
  const timeoutMs = options.timeoutMs ?? 2000;
  const attempts = Math.max(1, options.attempts ?? 2);
  const randomId = options.randomId ?? (() => randomInt(0, 0x10000));
  let servers: Promise<readonly HostPort[]> | undefined = options.servers && options.servers.length > 0
    ? Promise.resolve(options.servers)
    : undefined;

  async function ask(server: HostPort, name: string, type: RecordType, edns: boolean): Promise<QueryResult> {
    const id = randomId() & 0xffff;
    const query = encodeQuery(id, name, type, edns);
    const matches = (reply: Uint8Array): boolean => isReplyTo(reply, id, name, type);
    let exchange: Exchange = await exchangeUdp(server, query, timeoutMs, matches);
    if (exchange.ok && decodeHeader(exchange.reply)?.tc) {
      // RFC 1035 4.2.1 / RFC 7766 5: a truncated UDP reply is asked again over TCP.
      exchange = await exchangeTcp(server, query, timeoutMs);
      if (exchange.ok && !matches(exchange.reply)) {
        return { ok: false, error: "FORMERR", detail: "TCP reply does not match the query" };
      }
    }
    if (!exchange.ok) return { ok: false, error: exchange.error, detail: exchange.detail };
    const decoded = decodeMessage(exchange.reply);
    if (!decoded.ok) return { ok: false, error: "FORMERR", detail: `malformed reply: ${decoded.error}` };
    const result = interpret(decoded.message);
    // RFC 6891 7: a server that does not know EDNS answers FORMERR; ask it once more without OPT.
    if (!result.ok && result.error === "FORMERR" && edns) return ask(server, name, type, false);
    return result;
  }

  return {
    async query(name, type) {
      if (!isValidName(name)) return { ok: false, error: "FORMERR", detail: `cannot query the name "${name}"` };
      servers ??= systemNameservers();
      const list = await servers;
      const failures: Failure[] = [];
      for (let round = 0; round < attempts; round++) {
        for (const server of list) {
          const result = await ask(server, name, type, true);
          if (result.ok || !NEXT_SERVER.has(result.error)) return result;
          failures.push(result);
        }
      }
      return failures.reduce((best, f) => (RANK.indexOf(f.error) >= RANK.indexOf(best.error) ? f : best));
    },
  };
}

/** The reply's id and question must be ours (RFC 5452 4.3); a reply too broken to tell is taken, to fail as FORMERR. */
function isReplyTo(reply: Uint8Array, id: number, name: string, type: RecordType): boolean {
  const header = decodeHeader(reply);
  if (!header || header.id !== id || !header.qr) return false;
  const decoded = decodeMessage(reply);
  if (!decoded.ok) return true;
  const qs = decoded.message.questions;
  if (qs.length === 0) return header.rcode !== Rcode.NOERROR;
  const q = qs[0]!;
  return qs.length === 1 && normalizeName(q.name) === normalizeName(name) && q.type === RecordTypes[type] &&
    q.class === CLASS_IN;
}

function interpret(m: Message): QueryResult {
  const negativeTtl = negativeTtlOf(m);
  if (m.header.opcode !== 0) return { ok: false, error: "FORMERR", detail: `reply has opcode ${m.header.opcode}` };
  switch (m.header.rcode) {
    case Rcode.NOERROR:
      if (m.answers.length === 0) return { ok: false, error: "NODATA", ttl: negativeTtl };
      return { ok: true, answers: m.answers, ttl: Math.min(...m.answers.map((r) => r.ttl)), negativeTtl };
    case Rcode.NXDOMAIN:
      return { ok: false, error: "NXDOMAIN", ttl: negativeTtl };
    case Rcode.FORMERR:
      return { ok: false, error: "FORMERR", detail: "server answered FORMERR" };
    case Rcode.REFUSED:
      return { ok: false, error: "REFUSED", detail: "server answered REFUSED" };
    default:
      return { ok: false, error: "SERVFAIL", detail: `server answered rcode ${m.header.rcode}` };
  }
}

/** RFC 2308 5: the negative TTL is the smaller of the SOA's own TTL and its MINIMUM field. */
function negativeTtlOf(m: Message): number | undefined {
  const soa = m.authorities.find((r) => r.type === "SOA");
  return soa?.type === "SOA" ? Math.min(soa.ttl, soa.minimum) : undefined;
}
