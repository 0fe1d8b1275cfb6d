import type { Mailbox } from "../../core/address.ts";
import type { Reply } from "../../core/reply.ts";
import type { MemoryBudget } from "../../core/memory-budget.ts";
import type { Admission } from "./admission.ts";
import type { SecureContext } from "../../platform/net.ts";
import type { MailParams, RcptParams } from "../protocol/params.ts";
import type { Transcript } from "../protocol/transcript.ts";

export type { MailParams, RcptParams };

/** What the application knows about one SMTP connection. */
export interface SessionInfo {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  secure: boolean;
  heloName?: string;
  user?: string;
}

export interface Envelope {
  /** null for the null reverse-path "<>" (bounces, RFC 5321 4.5.5). */
  mailFrom: Mailbox | null;
  mailParams: MailParams;
  recipients: { mailbox: Mailbox; params: RcptParams }[];
}

/**
 * Application decisions; the protocol code holds no policy. A hook that
 * throws is answered with 451 4.3.0 and its error text is not shown.
 */
export interface SmtpServerHooks {
  /** A Reply with code >= 400 refuses the session: it is sent, then the connection closes. */
  onConnect?(s: SessionInfo): Promise<Reply | undefined>;
  /** undefined accepts with 250 2.1.0. */
  onMailFrom?(s: SessionInfo, from: Mailbox | null, params: MailParams): Promise<Reply | undefined>;
  /** undefined accepts with 250 2.1.5. */
  onRcptTo(s: SessionInfo, to: Mailbox, params: RcptParams, envelope: Envelope): Promise<Reply | undefined>;
  /** Answer 250 only after the message is durably committed (after DATA and after BDAT LAST). */
  onData(s: SessionInfo, envelope: Envelope, message: Uint8Array): Promise<Reply>;
  /**
   * SMTP AUTH (RFC 4954), asked only on a TLS session. undefined accepts
   * (235 2.7.0, session.user = username); a Reply refuses and is sent as is
   * (535 5.7.8 for bad credentials, 454 4.7.0 or 421 when throttling; 421
   * also closes the session). Without this hook AUTH is neither offered nor accepted.
   */
  onAuth?(s: SessionInfo, credentials: AuthCredentials): Promise<Reply | undefined>;
  /**
   * Asked once a session is admitted, before the banner: where to write its
   * commands and replies (undefined: nowhere). AUTH responses and message
   * content are left out (RFC 4954 credentials are replaced by a note).
   */
  transcript?(s: SessionInfo): Transcript | undefined;
}

export interface AuthCredentials {
  mechanism: "PLAIN" | "LOGIN";
  username: string;
  password: string;
}

export interface SmtpServerOptions {
  /** Banner and EHLO name. */
  hostname: string;
  /** SIZE limit (RFC 1870) for the unstuffed message. */
  maxMessageBytes: number;
  maxRecipients: number;
  /** Longest command line with its CRLF; at least 512 (RFC 5321 4.5.3.1.4). */
  maxLineLength?: number;
  /** Inactivity before "421 4.4.2" (RFC 5321 4.5.3.2.7 suggests 5 minutes). Default 300000. */
  idleTimeoutMs?: number;
  /** Concurrent sessions; more are answered "421 4.3.2" and closed. */
  maxConnections?: number;
  /** Protocol errors in one session before "421 4.7.0" and close. Default 20. */
  maxErrors?: number;
  /** Errors in one session answered at once; each one after them waits errorDelayMs. Default 10. */
  errorDelayAfter?: number;
  /** Default 1000 (Postfix's smtpd_error_sleep_time). */
  errorDelayMs?: number;
  /** Concurrent sessions from one address (TLS handshakes included); more are answered "421 4.7.0" and closed. */
  maxConnectionsPerIp?: number;
  /** Addresses maxConnectionsPerIp does not apply to, e.g. trusted networks. */
  perIpLimitExempt?: (address: string) => boolean;
  /** Places of maxConnections only perIpLimitExempt addresses may take. Default 0. */
  reservedConnections?: number;
  /** Whole-session time before "421 4.4.2" (at the next command boundary). Default 3600000. */
  maxSessionMs?: number;
  /** Commands in a row that are not MAIL, RCPT, DATA or BDAT before "421 4.7.0" and close. Default 50. */
  maxCommandsWithoutMail?: number;
  /**
   * Longest line of message text without its CRLF; a message with a longer
   * one is refused "500 5.5.2" once it has been read. Default 998
   * (RFC 5322 2.1.1, RFC 5321 4.5.3.1.6); Infinity turns the check off.
   */
  maxTextLineLength?: number;
  /** Handshake time for STARTTLS and implicit TLS. Default 30000. */
  tlsHandshakeTimeoutMs?: number;
  /** The certificate for STARTTLS and implicit TLS, asked for at every EHLO, STARTTLS and accept (so it can be reloaded). */
  tls?: () => SecureContext | undefined;
  /**
   * Implicit TLS (RFC 8314 3.3, port 465): every connection starts with a TLS
   * handshake, before the banner; STARTTLS is not offered. Needs tls.
   */
  implicitTls?: boolean;
  /**
   * An unexpected error in a session: a fault of this engine, or a hook
   * answer that is not a Reply. The client is answered as before (421 4.3.0
   * and the channel closed); this is where the operator learns why. Hook
   * rejections are not reported here: they are answered 451 4.3.0 and are
   * the hooks' own to log (src/ingress/logged-hooks.ts).
   */
  onError: (error: unknown, session: SessionInfo) => void;
  /**
   * Memory for messages being read, shared by every session (and by whoever
   * else the caller shares it with): each DATA or first BDAT reserves its
   * message's declared SIZE (or a little, growing as the message arrives)
   * and waits its turn when it is not free; the reservation is given back
   * with the reply to the message. Default: not counted.
   */
  messageMemory?: MemoryBudget;
  /** How long a message waits for messageMemory before "452 4.3.1". Default 90000 (clients wait 2 minutes for 354, RFC 5321 4.5.3.2.2). */
  messageMemoryWaitMs?: number;
  /**
   * Connection limits shared with other listeners, so that they count
   * together (maxConnections and the per-address limits are then its own).
   * Default: this listener's alone.
   */
  admission?: Admission;
}

type Optional =
  | "tls"
  | "maxConnections"
  | "maxConnectionsPerIp"
  | "perIpLimitExempt"
  | "reservedConnections"
  | "admission"
  | "messageMemory";
export type ResolvedOptions = Required<Omit<SmtpServerOptions, Optional>> & Pick<SmtpServerOptions, Optional>;

export function resolveOptions(o: SmtpServerOptions): ResolvedOptions {
  return {
    ...o,
    maxLineLength: Math.max(512, o.maxLineLength ?? 512),
    idleTimeoutMs: o.idleTimeoutMs ?? 300_000,
    maxErrors: o.maxErrors ?? 20,
    errorDelayAfter: o.errorDelayAfter ?? 10,
    errorDelayMs: o.errorDelayMs ?? 1000,
    tlsHandshakeTimeoutMs: o.tlsHandshakeTimeoutMs ?? 30_000,
    maxSessionMs: o.maxSessionMs ?? 3_600_000,
    maxCommandsWithoutMail: o.maxCommandsWithoutMail ?? 50,
    maxTextLineLength: o.maxTextLineLength ?? 998,
    implicitTls: o.implicitTls ?? false,
    messageMemoryWaitMs: o.messageMemoryWaitMs ?? 90_000,
  };
}
