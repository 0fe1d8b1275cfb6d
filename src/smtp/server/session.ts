import { formatReply, reply, type Reply } from "../../core/reply.ts";
import { upgradeToTlsServer, type Socket } from "../../platform/net.ts";
import { parseCommand } from "../protocol/command.ts";
import { DataReader, type DataResult } from "../protocol/data-reader.ts";
import { LineReader, type LineEvent } from "../protocol/line-reader.ts";
import * as cmd from "./commands.ts";
import type { ResolvedOptions, SessionInfo, SmtpServerHooks } from "./types.ts";

/** Stop reading from the socket while this much input waits for a slow hook. */
const HIGH_WATER = 64 * 1024;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * One SMTP session: framing, the command loop and the socket. Commands are
 * handled strictly one after another, so pipelined replies keep their order
 * (RFC 2920 3.1) even though hooks are async.
 */
export class Session implements cmd.CommandContext {
  readonly info: SessionInfo;
  readonly state: cmd.SessionState = { greeted: false };
  readonly closed: Promise<void>;
  #socket: Socket;
  #lines: LineReader;
  #data?: DataReader;
  #running = false;
  #ended = false;
  #closing = false;
  #errors = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #onClosed!: () => void;

  constructor(
    socket: Socket,
    readonly options: ResolvedOptions,
    readonly hooks: SmtpServerHooks,
  ) {
    this.#socket = socket;
    this.#lines = new LineReader(options.maxLineLength);
    this.closed = new Promise((resolve) => (this.#onClosed = resolve));
    this.info = cmd.newSessionInfo(socket);
  }

  /** Greet (or refuse) and start reading. */
  async start(): Promise<void> {
    this.#attach(this.#socket);
    this.#socket.pause();
    const onConnect = this.hooks.onConnect;
    if (onConnect) {
      const result = await this.call(() => onConnect.call(this.hooks, this.info));
      if (!result) return this.end(reply(421, "4.3.0", `${this.options.hostname} Service not available, closing channel`));
      if (result.value && result.value.code >= 400) return this.end(result.value);
    }
    if (this.#ended) return;
    this.#write(`220 ${this.options.hostname} ESMTP\r\n`);
    this.#resetTimer();
    this.#socket.resume();
    void this.#pump();
  }

  canStartTls(): boolean {
    return !this.info.secure && this.options.tls?.() !== undefined;
  }

  readonly call = cmd.callHook;

  /** Server shutdown: 421 now, or after the command in progress (its reply is owed first). */
  shutdown(): void {
    this.#closing = true;
    if (!this.#running) this.#shutdownNow();
  }

  #shutdownNow(): void {
    this.end(reply(421, "4.3.2", `${this.options.hostname} Service shutting down, closing channel`));
  }

  /** Send a last reply (if any) and close; safe to call more than once. */
  end(last?: Reply): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    const socket = this.#socket;
    socket.resume(); // read (and ignore) until the peer closes too
    try {
      if (last && !socket.destroyed) socket.end(formatReply(last));
      else socket.end();
    } catch {
      socket.destroy();
    }
    // Wait for the peer to close after our FIN, but not forever.
    setTimeout(() => socket.destroy(), 5_000).unref?.();
  }

  #attach(socket: Socket): void {
    socket.on("data", this.#onData);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  #onData = (chunk: Uint8Array): void => {
    if (this.#ended) return; // draining after our last reply
    this.#resetTimer();
    this.#lines.push(chunk);
    if (this.#lines.buffered > HIGH_WATER && !this.#data) this.#socket.pause();
    void this.#pump();
  };

  #onError = (): void => {
    // A reset or TLS failure: nothing to answer; "close" follows.
    this.#ended = true;
    clearTimeout(this.#timer);
  };

  #onClose = (): void => {
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#onClosed();
  };

  #resetTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#running) return this.#resetTimer(); // a hook is working; the client is not idle
      this.end(reply(421, "4.4.2", `${this.options.hostname} Timeout exceeded, closing channel`));
    }, this.options.idleTimeoutMs);
  }

  #write(text: string): void {
    if (this.#ended || this.#socket.destroyed) return;
    this.#socket.write(text);
  }

  #send(r: Reply): void {
    this.#write(formatReply(r));
  }

  /** Handle buffered input in order; only one pump runs at a time. */
  async #pump(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (!this.#ended) {
        if (this.#data) {
          const rest = this.#data.push(this.#lines.take());
          if (rest === undefined) break;
          const result = this.#data.result();
          this.#data = undefined;
          this.#lines.push(rest);
          await this.#afterData(result);
        } else {
          const event = this.#lines.next();
          if (!event) break;
          await this.#handle(event);
        }
        if (this.#closing) this.#shutdownNow();
      }
    } catch {
      this.end(reply(421, "4.3.0", `${this.options.hostname} Internal error, closing channel`));
    } finally {
      this.#running = false;
    }
    if (this.#closing) this.#shutdownNow();
    if (!this.#ended && this.#socket.isPaused() && this.#lines.buffered <= HIGH_WATER) this.#socket.resume();
  }

  async #handle(event: LineEvent): Promise<void> {
    if (event.kind !== "line") {
      // RFC 5321 4.5.3.1.4 (too long); bare CR/LF never end a line (smuggling).
      const text = event.kind === "too-long" ? "Line too long" : "Bare CR or LF in command; lines end with CRLF";
      return this.#error(reply(500, "5.5.2", text));
    }
    let line: string;
    try {
      line = utf8.decode(event.bytes);
    } catch {
      return this.#error(reply(500, "5.5.2", "Invalid UTF-8 in command"));
    }
    const { verb, args } = parseCommand(line);
    switch (verb) {
      case "EHLO":
        return this.#answer(cmd.ehlo(this, args));
      case "HELO":
        return this.#answer(cmd.helo(this, args));
      case "MAIL":
        return this.#answer(await cmd.mail(this, args));
      case "RCPT":
        return this.#answer(await cmd.rcpt(this, args));
      case "DATA": {
        const refusal = cmd.dataAllowed(this, args);
        if (refusal) return this.#answer(refusal);
        this.#send(reply(354, undefined, "End data with <CR><LF>.<CR><LF>"));
        this.#data = new DataReader(this.options.maxMessageBytes);
        return;
      }
      case "STARTTLS":
        return this.#startTls(args);
      case "QUIT":
        return this.end(reply(221, "2.0.0", `${this.options.hostname} Service closing transmission channel`));
      default: {
        const r = cmd.simple(this, verb, args);
        return r ? this.#answer(r) : this.#error(reply(500, "5.5.1", "Command unrecognized"));
      }
    }
  }

  async #afterData(result: DataResult): Promise<void> {
    this.#send(await cmd.finishData(this, result));
  }

  /** Replies >= 500 for syntax and sequence count towards maxErrors. */
  #answer(r: Reply): void {
    if (r.code === 500 || r.code === 501 || r.code === 503) return this.#error(r);
    this.#send(r);
  }

  #error(r: Reply): void {
    this.#send(r);
    if (++this.#errors >= this.options.maxErrors) this.end(reply(421, "4.7.0", `${this.options.hostname} Too many errors, closing channel`));
  }

  /** RFC 3207: answer 220, drop pipelined input, handshake, forget everything learnt before TLS. */
  async #startTls(args: string): Promise<void> {
    const check = cmd.startTlsAllowed(this, args);
    if (!("context" in check)) return this.#answer(check);
    const context = check.context;
    const plain = this.#socket;
    plain.pause();
    plain.off("data", this.#onData); // "close" and "error" stay: the TCP connection is still ours
    this.#lines.take(); // RFC 3207 4.2: commands pipelined after STARTTLS are discarded
    await new Promise<void>((resolve) => plain.write(formatReply(reply(220, "2.0.0", "Ready to start TLS")), () => resolve()));
    if (this.#ended) return;
    try {
      this.#socket = await upgradeToTlsServer(plain, context, this.options.tlsHandshakeTimeoutMs);
    } catch {
      this.#ended = true;
      plain.destroy(); // "close" on the plain socket settles this.closed
      return;
    }
    this.#attach(this.#socket);
    if (this.#socket.destroyed) return this.#onClose();
    this.info.secure = true;
    this.info.heloName = undefined;
    this.state.greeted = false;
    this.state.tx = undefined;
    this.#lines.take();
    this.#resetTimer();
  }
}
