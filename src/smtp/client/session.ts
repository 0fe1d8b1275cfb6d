import type { Reply } from "../../core/reply.ts";
import type { ReplyChannel } from "./channel.ts";
import { SmtpClientError } from "./errors.ts";
import { handshake, type TlsInfo } from "./handshake.ts";
import { type ClientOptions, type ClientTimeouts, resolveTimeouts } from "./options.ts";
import { type Envelope, runTransaction, type SendResult } from "./transaction.ts";

/**
 * An outbound SMTP session: open() connects and greets, send() runs one mail
 * transaction at a time (as many as the caller likes on one connection),
 * quit() ends politely. Any transport failure or timeout closes the session,
 * and so does the server ending it between transactions (a close, a reset,
 * a 421): `closed` tells at once.
 */
export class SmtpClientSession {
  private needsReset = false;
  private busy = false;

  private constructor(
    private readonly channel: ReplyChannel,
    private readonly timeouts: ClientTimeouts,
    /** The server's 220 greeting. */
    readonly greeting: Reply,
    /** EHLO keywords (upper case) and their parameters; empty after a HELO fallback. */
    readonly extensions: Map<string, string>,
    /** Set when STARTTLS succeeded. */
    readonly tls: TlsInfo | undefined,
  ) {}

  /** Connect, greeting, EHLO (HELO on a 5xx), STARTTLS; throws SmtpClientError. */
  static async open(options: ClientOptions): Promise<SmtpClientSession> {
    const timeouts = resolveTimeouts(options.timeouts);
    const { channel, greeting, extensions, tls } = await handshake(options, timeouts);
    channel.expectNothing();
    return new SmtpClientSession(channel, timeouts, greeting, extensions, tls);
  }

  /** False once the connection failed, timed out, got a 421, or was closed. */
  get usable(): boolean {
    return this.channel.usable;
  }

  /** Settles once the session has ended, whoever ended it. */
  get closed(): Promise<void> {
    return this.channel.closed;
  }

  /** The address of the server. */
  get remoteAddress(): string | undefined {
    return this.channel.remoteAddress;
  }

  /** The source address the connection is bound to. */
  get localAddress(): string | undefined {
    return this.channel.localAddress;
  }

  /**
   * One transaction. Refusals come back as replies in the result; transport
   * failures throw SmtpClientError (with `partial` holding the replies so far).
   * lineBreaks "crlf": the caller vouches that every line break is CRLF (see encodeData).
   */
  async send(envelope: Envelope, message: Uint8Array, lineBreaks: "crlf" | "any" = "any"): Promise<SendResult> {
    if (!this.channel.usable) throw new SmtpClientError("closed", "mail", "session is closed");
    if (this.busy) throw new Error("SmtpClientSession.send called while another send is in progress");
    this.busy = true;
    try {
      const end = await runTransaction(
        this.channel,
        this.extensions,
        this.timeouts,
        envelope,
        { message, lineBreaks },
        this.needsReset,
      );
      this.needsReset = end.needsReset;
      if (end.closing) this.channel.close();
      return end.result;
    } catch (error) {
      if (error instanceof SmtpClientError) this.channel.close();
      throw error;
    } finally {
      this.busy = false;
      if (this.channel.usable) this.channel.expectNothing();
    }
  }

  /** QUIT (RFC 5321 4.1.1.10) and close; never throws, the mail is already decided. */
  async quit(): Promise<void> {
    if (this.channel.usable && !this.busy) {
      this.channel.write("QUIT\r\n");
      await this.channel.next("quit", "QUIT", this.timeouts.quit).catch(() => undefined);
    }
    this.channel.close();
  }

  /** Drop the connection without QUIT. */
  close(): void {
    this.channel.close();
  }
}
