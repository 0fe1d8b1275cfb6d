import { formatReply, type Reply, reply } from "../../core/reply.ts";
import { type SecureContext, type Socket, upgradeToTlsServer } from "../../platform/net.ts";
import { type LineEvent, LineReader } from "../protocol/line-reader.ts";
import { MAX_SASL_LINE } from "../protocol/sasl.ts";
import { transcribe, type Transcript } from "../protocol/transcript.ts";
import type { Body } from "./body.ts";
import * as cmd from "./commands.ts";
import { type Action, command, frame, PROGRESS, sasl } from "./dispatch.ts";
import { IdleTimer } from "./idle-timer.ts";
import type { ResolvedOptions, SessionInfo, SmtpServerHooks } from "./types.ts";

/** Stop reading from the socket while this much input waits for a slow hook. */
const HIGH_WATER = 64 * 1024;
/** Replies that count towards maxErrors: syntax, sequence, failed AUTH. */
const ERROR_CODES = new Set([500, 501, 503, 535]);

const lossyUtf8 = new TextDecoder("utf-8");
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A command line for a transcript; AUTH's initial response (RFC 4954 4) is credentials: only the mechanism shows. */
function traceLine(event: LineEvent): string {
  if (event.kind === "too-long") return "(line too long)";
  if (event.kind === "bare-eol") return "(line with a bare CR or LF)";
  const line = lossyUtf8.decode(event.bytes);
  const auth = /^(AUTH\s+\S+)\s+\S/i.exec(line);
  return auth ? `${auth[1]} (initial response not shown)` : line;
}

/**
 * One SMTP session: framing, the command loop, the socket and its limits.
 * Commands are handled strictly one after another, so pipelined replies keep
 * their order (RFC 2920 3.1) even though hooks are async.
 */
export class Session implements cmd.CommandContext {
  readonly state: cmd.SessionState = { greeted: false };
  readonly closed: Promise<void>;
  #socket: Socket;
  #lines: LineReader;
  /** A DATA body or BDAT chunk being read. */
  #body?: Body;
  #running = false;
  #ended = false;
  /** The 421 to end with once the command in progress has its reply (shutdown, session time). */
  #closing?: Reply;
  #errors = 0;
  /** Commands in a row that did not move a transaction forward. */
  #idleCommands = 0;
  readonly #idleTimer: IdleTimer;
  #deadline: ReturnType<typeof setTimeout>;
  #onClosed!: () => void;
  #transcript?: Transcript;

  constructor(
    socket: Socket,
    readonly options: ResolvedOptions,
    readonly hooks: SmtpServerHooks,
    readonly info: SessionInfo = cmd.newSessionInfo(socket),
  ) {
    this.#socket = socket;
    // Command lines are checked against maxLineLength after framing; only AUTH may reach 12288 (RFC 4954 4).
    this.#lines = new LineReader(Math.max(options.maxLineLength, MAX_SASL_LINE));
    this.closed = new Promise((resolve) => (this.#onClosed = resolve));
    const host = options.hostname;
    this.#idleTimer = new IdleTimer(options.idleTimeoutMs, () => this.#onIdle());
    this.#deadline = setTimeout(
      () => this.#closeSoon(reply(421, "4.4.2", `${host} Session time limit exceeded, closing channel`)),
      options.maxSessionMs,
    );
  }

  /** Greet (or refuse) and start reading. */
  async start(): Promise<void> {
    this.#attach(this.#socket);
    this.#socket.pause();
    const onConnect = this.hooks.onConnect;
    if (onConnect) {
      const result = await this.call(() => onConnect.call(this.hooks, this.info));
      if (!result) {
        return this.end(reply(421, "4.3.0", `${this.options.hostname} Service not available, closing channel`));
      }
      if (result.value && result.value.code >= 400) return this.end(result.value);
    }
    if (this.#ended) return;
    this.#transcript = this.hooks.transcript?.(this.info);
    this.#write(`220 ${this.options.hostname} ESMTP\r\n`);
    this.#idleTimer.touch();
    this.#socket.resume();
    void this.#pump();
  }

  canStartTls(): boolean {
    return !this.info.secure && !this.options.implicitTls && this.options.tls?.() !== undefined;
  }

  readonly call = cmd.callHook;

  /** Server shutdown: 421 now, or after the command in progress (its reply is owed first). */
  shutdown(): void {
    this.#closeSoon(reply(421, "4.3.2", `${this.options.hostname} Service shutting down, closing channel`));
  }

  #closeSoon(last: Reply): void {
    this.#closing ??= last;
    if (!this.#running) this.end(this.#closing);
  }

  /** Send a last reply (if any) and close; safe to call more than once. */
  end(last?: Reply): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stopTimers();
    const socket = this.#socket;
    socket.resume(); // read (and ignore) until the peer closes too
    try {
      if (last && !socket.destroyed) {
        const text = formatReply(last);
        if (this.#transcript) transcribe(this.#transcript, "out", text);
        socket.end(text);
      } else socket.end();
    } catch (error) {
      // Ending a socket the peer has torn down may throw: that is the peer's doing, and
      // "close" follows. Anything else (a last reply that cannot be formatted) is ours.
      if (!socket.destroyed) this.options.onError(error, this.info);
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
    this.#idleTimer.touch();
    this.#lines.push(chunk);
    if (this.#lines.buffered > HIGH_WATER && !this.#body) this.#socket.pause();
    void this.#pump();
  };

  #onError = (): void => {
    // A reset or TLS failure: nothing to answer; "close" follows.
    this.#ended = true;
    this.#stopTimers();
  };

  #onClose = (): void => {
    this.#ended = true;
    cmd.releaseMessageMemory(this);
    this.#stopTimers();
    this.#onClosed();
  };

  #stopTimers(): void {
    this.#idleTimer.stop();
    clearTimeout(this.#deadline);
  }

  #onIdle(): void {
    if (this.#running) return this.#idleTimer.touch(); // a hook is working; the client is not idle
    this.end(reply(421, "4.4.2", `${this.options.hostname} Timeout exceeded, closing channel`));
  }

  #write(text: string): void {
    if (this.#ended || this.#socket.destroyed) return;
    if (this.#transcript) transcribe(this.#transcript, "out", text);
    this.#socket.write(text);
  }

  #send(r: Reply): void {
    // A SASL challenge keeps its space even when empty: "334 " (RFC 4954 4).
    if (r.code === 334) return this.#write(`334 ${r.lines[0] ?? ""}\r\n`);
    this.#write(formatReply(r));
  }

  /** Handle buffered input in order; only one pump runs at a time. */
  async #pump(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (!this.#ended) {
        if (this.#body) {
          const rest = this.#body.push(this.#lines.take());
          if (rest === undefined) break;
          const body = this.#body;
          this.#body = undefined;
          this.#lines.push(rest);
          await this.#answer(await body.finish());
        } else {
          const event = this.#lines.next();
          if (!event) break;
          await this.#handle(event);
        }
        if (this.#closing) this.end(this.#closing);
      }
    } catch (error) {
      this.options.onError(error, this.info);
      this.end(reply(421, "4.3.0", `${this.options.hostname} Internal error, closing channel`));
    } finally {
      this.#running = false;
    }
    if (this.#closing) this.end(this.#closing);
    if (!this.#ended && this.#socket.isPaused() && this.#lines.buffered <= HIGH_WATER) this.#socket.resume();
  }

  async #handle(event: LineEvent): Promise<void> {
    if (this.#transcript) this.#transcript("in", this.state.sasl ? "(AUTH response not shown)" : traceLine(event));
    if (this.state.sasl) return this.#perform(await sasl(this, event));
    const framed = frame(this, event);
    const verb = "verb" in framed ? framed.verb : undefined;
    if (verb !== undefined && PROGRESS.has(verb)) this.#idleCommands = 0;
    else if (verb !== "QUIT" && ++this.#idleCommands > this.options.maxCommandsWithoutMail) {
      return this.end(
        reply(421, "4.7.0", `${this.options.hostname} Too many commands without a mail transaction, closing channel`),
      );
    }
    if ("reply" in framed) return this.#answer(framed.reply);
    return this.#perform(await command(this, framed.verb, framed.args));
  }

  async #perform(action: Action): Promise<void> {
    switch (action.kind) {
      case "reply":
        return this.#answer(action.reply);
      case "body":
        if (action.intro) this.#send(action.intro);
        this.#body = action.body;
        return;
      case "starttls":
        return this.#startTls(action.context);
      case "quit":
        return this.end(reply(221, "2.0.0", `${this.options.hostname} Service closing transmission channel`));
    }
  }

  /**
   * A 421 (from a hook too) closes the channel (RFC 5321 3.8); some errors
   * count towards maxErrors, and past errorDelayAfter each of them is
   * answered errorDelayMs late (Postfix's smtpd_error_sleep_time): a client
   * that only sends garbage gets few answers, and costs little, before it
   * is cut off.
   */
  async #answer(r: Reply): Promise<void> {
    if (r.code === 421) return this.end(r);
    const error = ERROR_CODES.has(r.code);
    if (error && ++this.#errors > this.options.errorDelayAfter) await sleep(this.options.errorDelayMs);
    this.#send(r);
    if (error && this.#errors >= this.options.maxErrors) {
      this.end(reply(421, "4.7.0", `${this.options.hostname} Too many errors, closing channel`));
    }
  }

  /**
   * RFC 3207: answer 220, drop pipelined input (RFC 3207 4.2, CVE-2011-0411),
   * handshake, forget everything learnt before TLS.
   */
  async #startTls(context: SecureContext): Promise<void> {
    const plain = this.#socket;
    plain.pause();
    plain.off("data", this.#onData); // "close" and "error" stay: the TCP connection is still ours
    this.#lines.take();
    const ready = formatReply(reply(220, "2.0.0", "Ready to start TLS"));
    if (this.#transcript) transcribe(this.#transcript, "out", ready);
    await new Promise<void>((resolve) => plain.write(ready, () => resolve()));
    if (this.#ended) return;
    try {
      this.#socket = await upgradeToTlsServer(plain, context, this.options.tlsHandshakeTimeoutMs);
    } catch {
      // The client's handshake failed, stalled or was reset: its doing, with nothing to answer.
      this.#ended = true;
      this.#stopTimers();
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
    this.#idleTimer.touch();
  }
}
