import type { Socket } from "node:net";
import { formatReply, type Reply, replyText } from "../../core/reply.ts";
import { transcribe, type TranscriptSource } from "../protocol/transcript.ts";
import { type ClientErrorKind, type ClientStage, kindOfSocketError, SmtpClientError } from "./errors.ts";
import { ReplyFormatError, ReplyReader } from "./reply-reader.ts";

interface Waiter {
  resolve(reply: Reply): void;
  reject(error: SmtpClientError): void;
  stage: ClientStage;
  command?: string;
  timer: ReturnType<typeof setTimeout>;
}

interface Ended {
  kind: ClientErrorKind;
  message: string;
  code?: string;
  cause?: unknown;
}

/**
 * One connection seen as a queue of replies: the session writes commands and
 * awaits replies one at a time, each with its stage's timeout. Replies that
 * arrive early (PIPELINING) wait in order. The socket can be swapped for STARTTLS.
 */
export class ReplyChannel {
  private readonly reader: ReplyReader;
  private readonly queued: Reply[] = [];
  private waiter?: Waiter;
  private ended?: Ended;
  private socket: Socket;
  /** Every command written has had its reply: anything the server sends now ends the session. */
  private idle = false;
  private markClosed!: () => void;
  /** Settles once the connection has ended, for whatever reason and whoever ended it. */
  readonly closed: Promise<void> = new Promise((resolve) => (this.markClosed = resolve));

  constructor(socket: Socket, maxReplyBytes?: number, private readonly transcript?: TranscriptSource) {
    this.reader = new ReplyReader(maxReplyBytes);
    this.socket = socket;
    this.attach(socket);
  }

  get usable(): boolean {
    return this.ended === undefined;
  }

  /**
   * The session waits for its next command: a reply the server sends now
   * answers nothing. It is a 421 before the server closes (RFC 5321 3.8,
   * e.g. its idle timeout) or a broken server, and either way the session is
   * over, at once, rather than when the next command reads it as its answer.
   * The next write ends this state.
   */
  expectNothing(): void {
    this.idle = true;
    if (this.queued.length > 0) this.endIdle(this.queued[0]!);
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  attach(socket: Socket): void {
    this.socket = socket;
    socket.on("data", this.onData);
    socket.on("error", this.onError);
    socket.on("close", this.onClose);
  }

  /**
   * Hand the raw socket over (for the TLS handshake). Anything the server sent
   * after its 220 to STARTTLS would be plaintext injected into the TLS session
   * (RFC 3207 5, CVE-2011-0411 class): refuse it.
   */
  detach(stage: ClientStage): Socket {
    const socket = this.socket;
    socket.off("data", this.onData);
    socket.off("error", this.onError);
    socket.off("close", this.onClose);
    if (this.reader.pending || this.queued.length > 0) {
      socket.destroy();
      throw new SmtpClientError("protocol", stage, "server sent data after its reply to STARTTLS");
    }
    return socket;
  }

  write(data: string | Uint8Array): void {
    if (this.ended) return; // the next read reports why
    this.idle = false;
    const transcript = this.transcript?.();
    if (transcript) {
      if (typeof data === "string") transcribe(transcript, "out", data);
      else transcript("out", `(message data, ${data.byteLength} octets)`);
    }
    this.socket.write(data);
  }

  /** The next reply, tagged with the command that caused it. */
  next(stage: ClientStage, command: string | undefined, timeoutMs: number): Promise<Reply> {
    const ready = this.queued.shift();
    if (ready) return Promise.resolve(command === undefined ? ready : { ...ready, command });
    if (this.ended) return Promise.reject(this.error(this.ended, stage));
    if (this.waiter) return Promise.reject(new SmtpClientError("protocol", stage, "a reply is already awaited"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.fail({ kind: "closed", message: "session closed after a timeout" });
        reject(new SmtpClientError("timeout", stage, `no reply at ${stage} within ${timeoutMs}ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (reply) => resolve(command === undefined ? reply : { ...reply, command }),
        reject,
        stage,
        command,
        timer,
      };
    });
  }

  close(): void {
    this.fail({ kind: "closed", message: "session closed" });
  }

  private readonly onData = (chunk: Uint8Array): void => {
    let replies: Reply[];
    try {
      replies = this.reader.push(chunk);
    } catch (error) {
      const message = error instanceof ReplyFormatError ? error.message : String(error);
      this.fail({ kind: "protocol", message, cause: error });
      return;
    }
    const transcript = replies.length > 0 ? this.transcript?.() : undefined;
    if (transcript) { for (const reply of replies) transcribe(transcript, "in", formatReply(reply)); }
    if (this.idle && replies.length > 0) return this.endIdle(replies[0]!);
    this.queued.push(...replies);
    this.wake();
  };

  private endIdle(reply: Reply): void {
    this.fail({ kind: "disconnected", message: `server ended the idle session: ${replyText(reply)}` });
  }

  private readonly onError = (error: Error): void => {
    const stage = this.waiter?.stage ?? "quit";
    const { kind, code } = kindOfSocketError(error, stage);
    this.fail({ kind, code, message: error.message, cause: error });
  };

  private readonly onClose = (): void => {
    this.fail({ kind: "disconnected", message: "server closed the connection" });
  };

  private wake(): void {
    const waiter = this.waiter;
    const reply = waiter && this.queued.shift();
    if (!waiter || !reply) return;
    this.waiter = undefined;
    clearTimeout(waiter.timer);
    waiter.resolve(reply);
  }

  /** Record the first reason the connection ended, destroy it, and fail a pending read. */
  private fail(ended: Ended): void {
    if (!this.ended) this.ended = ended;
    this.socket.destroy();
    this.markClosed();
    const waiter = this.waiter;
    if (!waiter) return;
    this.waiter = undefined;
    clearTimeout(waiter.timer);
    waiter.reject(this.error(this.ended, waiter.stage));
  }

  private error(ended: Ended, stage: ClientStage): SmtpClientError {
    const where = ended.kind === "closed" ? "" : ` at ${stage}`;
    return new SmtpClientError(ended.kind, stage, `${ended.message}${where}`, undefined, ended.code, {
      cause: ended.cause,
    });
  }
}
