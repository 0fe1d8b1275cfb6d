import type { Reply } from "../../core/reply.ts";

/** Where in the session a failure happened; the delivery code classifies on it. */
export type ClientStage =
  | "connect"
  | "greeting"
  | "ehlo"
  | "helo"
  | "starttls"
  | "tls"
  | "rset"
  | "mail"
  | "rcpt"
  | "data"
  | "dataEnd"
  | "quit";

/**
 * What went wrong:
 * - refused / unreachable: the TCP connect failed (ECONNREFUSED; EHOSTUNREACH, ENETUNREACH, EADDRNOTAVAIL...)
 * - reset: the peer reset the connection (ECONNRESET, EPIPE)
 * - disconnected: the peer closed the connection while a reply was awaited
 * - timeout: no reply (or no connect) within the stage's timeout (RFC 5321 4.5.3.2)
 * - tls: STARTTLS unavailable when required, or the handshake failed
 * - protocol: the server sent something that is not an SMTP reply, or too much of it
 * - reply: the server answered, negatively, at a stage that ends the session (greeting, EHLO/HELO, STARTTLS)
 * - closed: the session was already closed or is unusable after an earlier failure
 */
export type ClientErrorKind =
  | "refused"
  | "unreachable"
  | "reset"
  | "disconnected"
  | "timeout"
  | "tls"
  | "protocol"
  | "reply"
  | "closed";

/** Replies collected before a transaction broke off (so refused recipients can still be classified). */
export interface PartialSendResult {
  readonly mail?: Reply;
  readonly recipients: readonly { readonly address: string; readonly reply: Reply }[];
}

export class SmtpClientError extends Error {
  override readonly name = "SmtpClientError";
  constructor(
    readonly kind: ClientErrorKind,
    readonly stage: ClientStage,
    message: string,
    readonly reply?: Reply,
    /** errno-style code of the underlying socket error, when there was one. */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Replies received in the transaction before it failed; set by `send`. */
  partial?: PartialSendResult;
}

/** Map a socket error to a kind: refused and unreachable only make sense while connecting. */
export function kindOfSocketError(error: unknown, stage: ClientStage): { kind: ClientErrorKind; code?: string } {
  const code = typeof (error as { code?: unknown })?.code === "string" ? (error as { code: string }).code : undefined;
  if (code === "ECONNREFUSED") return { kind: "refused", code };
  if (code === "ECONNRESET" || code === "EPIPE") return { kind: "reset", code };
  if (code === "ETIMEDOUT") return { kind: "timeout", code };
  if (stage === "connect") {
    if (!code && error instanceof Error && /timed out/i.test(error.message)) return { kind: "timeout" };
    return { kind: "unreachable", code };
  }
  return { kind: "disconnected", code };
}
