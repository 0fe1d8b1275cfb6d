import type { Reply } from "../core/reply.ts";
import type { Claim } from "../queue/records.ts";
import type { Classification } from "./classify.ts";
import type { ReportPolicy } from "./tls-report/policy.ts";
import type { TlsSession } from "./tls-report/session.ts";

/** One message's leased recipients that go to the same destination: one SMTP transaction (or a few). */
export interface Work {
  readonly messageId: string;
  readonly mailFrom: string;
  readonly claims: Claim[];
  /**
   * TLS reporting (RFC 8460): the policy each recipient domain's sessions are
   * counted under; a domain not in it is not reported (see Plan).
   */
  readonly tlsReport?: ReadonlyMap<string, ReportPolicy>;
}

/** The message itself, loaded only when a connection is ready to send it. */
export interface Payload {
  readonly messageId: string;
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly body: Uint8Array;
  readonly mailParams?: readonly string[];
  /** Tagged REQUIRETLS (RFC 8689 4.1): sent with REQUIRETLS on MAIL FROM, and only where a session meets it. */
  readonly requireTls?: boolean;
  /** RFC 3461 parameters to pass on to a next hop that advertises DSN. */
  readonly dsn?: PayloadDsn;
}

/** RFC 3461: RET and ENVID of the message, NOTIFY and ORCPT of each recipient (parallel to `recipients`). */
export interface PayloadDsn {
  readonly ret?: "FULL" | "HDRS";
  readonly envid?: string;
  readonly recipients: readonly { readonly notify?: string; readonly orcpt?: string }[];
}

/** The outcome of one attempt for one recipient. */
export interface RecipientResult extends Classification {
  readonly address: string;
  readonly reply: Reply;
  readonly remoteMta?: string;
  /** The address of the host that answered (or failed to), and the source address used: for the delivery log. */
  readonly remoteIp?: string;
  readonly localIp?: string;
  /** How long the attempt took on its connection (the transaction, not the connection's setup). */
  readonly durationMs?: number;
  readonly tls?: { readonly version: string; readonly cipher: string };
  /** False when nothing was tried (e.g. the destination was suspended); the attempt count stays. */
  readonly attempted?: boolean;
  /** For a deferral: not before this time (the end of a destination's pause), instead of the retry schedule. */
  readonly retryAt?: number;
  /**
   * The connection was lost before this recipient was tried: its RCPT had no
   * answer and no data went out. When that connection came from the pool,
   * this is no attempt: the destination sends the work again on a fresh one.
   */
  readonly untried?: boolean;
  /**
   * The next hop advertised DSN and was given NOTIFY/ORCPT: a success is
   * its to report, not ours (RFC 3461 5.2.2).
   */
  readonly dsnPassedOn?: boolean;
  /** The sandbox's complaint@: a feedback report (ARF) follows the delivery. */
  readonly complaint?: boolean;
}

/** An open way to deliver (an SMTP session, or the sandbox): sends one message at a time. */
export interface Channel {
  readonly remoteMta: string;
  readonly usable: boolean;
  /**
   * Settles once the connection has ended, whoever ended it (the peer, too,
   * while it waited in the pool); absent for a channel that never ends by itself.
   */
  readonly closed?: Promise<void>;
  /** The TLS sessions it took to open it (hosts that failed first, then its own), for TLS reporting (RFC 8460). */
  readonly tlsSessions?: readonly TlsSession[];
  send(payload: Payload): Promise<RecipientResult[]>;
  /** End politely; never throws. */
  quit(): Promise<void>;
  close(): void;
}

/** Opens channels to one destination; `open` tries its hosts in order. */
export interface Transport {
  open(): Promise<Channel>;
}

/** Why a destination could not be reached at all: every host failed before a transaction. */
export class DestinationUnreachable extends Error {
  constructor(
    readonly reply: Reply,
    readonly classification: Classification,
    readonly remoteMta?: string,
    /** The TLS sessions tried on the way (RFC 8460). */
    readonly tlsSessions: readonly TlsSession[] = [],
    /** The address of the host whose failure this is, and the source address used. */
    readonly remoteIp?: string,
    readonly localIp?: string,
  ) {
    super(reply.lines.join(" "));
  }
}
