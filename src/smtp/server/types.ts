import type { Mailbox } from "../../core/address.ts";
import type { Reply } from "../../core/reply.ts";
import type { SecureContext } from "../../platform/net.ts";
import type { MailParams, RcptParams } from "../protocol/params.ts";

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
  /** Answer 250 only after the message is durably committed. */
  onData(s: SessionInfo, envelope: Envelope, message: Uint8Array): Promise<Reply>;
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
  /** Concurrent sessions; more are answered "421 4.7.0" and closed. */
  maxConnections?: number;
  /** Protocol errors in one session before "421 4.7.0" and close. Default 20. */
  maxErrors?: number;
  tlsHandshakeTimeoutMs?: number;
  /** The certificate for STARTTLS, asked for at every EHLO and STARTTLS (so it can be reloaded). */
  tls?: () => SecureContext | undefined;
}

export type ResolvedOptions = Required<Omit<SmtpServerOptions, "tls" | "maxConnections">> &
  Pick<SmtpServerOptions, "tls" | "maxConnections">;

export function resolveOptions(o: SmtpServerOptions): ResolvedOptions {
  return {
    ...o,
    maxLineLength: Math.max(512, o.maxLineLength ?? 512),
    idleTimeoutMs: o.idleTimeoutMs ?? 300_000,
    maxErrors: o.maxErrors ?? 20,
    tlsHandshakeTimeoutMs: o.tlsHandshakeTimeoutMs ?? 30_000,
  };
}
