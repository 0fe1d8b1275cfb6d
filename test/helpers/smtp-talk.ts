import { connect, type Socket } from "node:net";
import * as tls from "node:tls";

/**
 * A plain SMTP conversation for tests: send lines, read whole replies.
 * Deliberately independent of src/smtp so a bug there cannot hide here.
 */
export class SmtpTalk {
  private buffer = "";
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(private socket: Socket) {
    this.listen(socket);
  }

  private listen(socket: Socket): void {
    socket.setEncoding("latin1");
    socket.on("data", this.onData);
    socket.on("close", this.onClose);
    socket.on("error", () => undefined);
  }

  private readonly onData = (chunk: string): void => {
    this.buffer += chunk;
    this.notify();
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.notify();
  };

  /** STARTTLS (RFC 3207) and the handshake, the certificate unchecked; returns the reply to STARTTLS. */
  async startTls(): Promise<string> {
    const answer = await this.command("STARTTLS");
    if (!answer.startsWith("220")) return answer;
    const plain = this.socket;
    plain.off("data", this.onData);
    plain.off("close", this.onClose);
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((ok, fail) => {
      secure.once("secureConnect", ok);
      secure.once("error", fail);
    });
    this.socket = secure;
    this.listen(secure);
    return answer;
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static async open(port: number, host = "127.0.0.1", localAddress?: string): Promise<SmtpTalk> {
    const socket = connect({ port, host, localAddress });
    await new Promise<void>((ok, fail) => {
      socket.once("connect", ok);
      socket.once("error", fail);
    });
    return new SmtpTalk(socket);
  }

  /** The next complete reply (all lines of a multi-line reply), e.g. "250 2.0.0 OK". */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.buffer);
      if (match) {
        this.buffer = this.buffer.slice(match[0].length);
        return match[0].trimEnd();
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; unread: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((ok) => {
        const timer = setTimeout(ok, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          ok();
        });
      });
    }
  }

  write(text: string | Uint8Array): void {
    this.socket.write(text);
  }

  /** Send one command line and return its reply. */
  async command(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One complete transaction; returns every reply in order (greeting first). */
export async function sendMail(
  port: number,
  mailFrom: string,
  recipients: string[],
  message: string,
  host = "127.0.0.1",
): Promise<string[]> {
  const talk = await SmtpTalk.open(port, host);
  try {
    const replies = [
      await talk.reply(),
      await talk.command("EHLO client.test"),
      await talk.command(`MAIL FROM:<${mailFrom}>`),
    ];
    for (const r of recipients) replies.push(await talk.command(`RCPT TO:<${r}>`));
    replies.push(await talk.command("DATA"));
    const stuffed = message.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
    replies.push(await talk.command(`${stuffed}${stuffed.endsWith("\r\n") ? "" : "\r\n"}.`));
    replies.push(await talk.command("QUIT"));
    return replies;
  } finally {
    talk.close();
  }
}
