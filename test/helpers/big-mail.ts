/**
 * Large messages made on the fly, for memory tests and scripts: a message of
 * any size is written to the socket a block at a time, with backpressure,
 * so the sender holds one block however big the message is. And the memory
 * of a process as Linux counts it.
 */
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";

/** One line of body text: 76 octets and CRLF, as base64 attachments come. */
const LINE = `${"QUJD".repeat(19)}\r\n`;
const BLOCK = Buffer.from(LINE.repeat(Math.floor(65_536 / LINE.length)), "latin1");

/** The RFC 5322 header section of a generated message. */
export function bigMailHeader(from: string, to: readonly string[], subject: string): string {
  return `From: <${from}>\r\nTo: ${to.map((t) => `<${t}>`).join(", ")}\r\nSubject: ${subject}\r\n` +
    `Message-ID: <${subject.replace(/[^A-Za-z0-9.-]/g, "-")}@memory.test>\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
}

/** The body of a message of `size` octets (header included) after `header`: whole lines, the last one short. */
export function* bigMailBody(headerBytes: number, size: number): Generator<Buffer> {
  let left = Math.max(0, size - headerBytes);
  while (left >= BLOCK.length) {
    yield BLOCK;
    left -= BLOCK.length;
  }
  const lines = Math.floor(left / LINE.length);
  if (lines > 0) yield BLOCK.subarray(0, lines * LINE.length);
  left -= lines * LINE.length;
  if (left > 2) yield Buffer.from(`${"x".repeat(left - 2)}\r\n`, "latin1");
}

/** Reads whole SMTP replies from a socket. */
class Replies {
  #text = "";
  #waiting: (() => void) | undefined;
  #closed = false;

  constructor(socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.#text += chunk;
      this.#waiting?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#waiting?.();
    });
    socket.on("error", () => undefined);
  }

  async next(): Promise<string> {
    for (;;) {
      const end = /^\d{3} [^\r\n]*\r\n/m.exec(this.#text);
      if (end) {
        const reply = this.#text.slice(0, end.index + end[0].length);
        this.#text = this.#text.slice(reply.length);
        return reply.trimEnd();
      }
      if (this.#closed) return `(closed)${this.#text === "" ? "" : ` ${this.#text.trimEnd()}`}`;
      await new Promise<void>((ok) => (this.#waiting = ok));
    }
  }
}

const written = (socket: Socket, chunk: Buffer | string) =>
  socket.write(chunk) ? Promise.resolve() : new Promise<void>((ok) => socket.once("drain", () => ok()));

/**
 * One SMTP transaction with a generated message of `size` octets; resolves
 * with the reply to the end of the data (or the first refusal on the way).
 */
export async function sendBigMail(
  port: number,
  mail: { from: string; to: readonly string[]; subject: string; size: number; host?: string },
): Promise<string> {
  const socket = connect({ host: mail.host ?? "127.0.0.1", port });
  const replies = new Replies(socket);
  try {
    const expect = async (code: string) => {
      const reply = await replies.next();
      if (!reply.startsWith(code)) throw Object.assign(new Error(reply), { reply });
    };
    await expect("220");
    await written(socket, "EHLO memory.test\r\n");
    await expect("250");
    await written(socket, `MAIL FROM:<${mail.from}> SIZE=${mail.size}\r\n`);
    await expect("250");
    for (const to of mail.to) {
      await written(socket, `RCPT TO:<${to}>\r\n`);
      await expect("250");
    }
    await written(socket, "DATA\r\n");
    await expect("354");
    const header = bigMailHeader(mail.from, mail.to, mail.subject);
    await written(socket, header);
    for (const block of bigMailBody(header.length, mail.size)) await written(socket, block);
    await written(socket, ".\r\n");
    const reply = await replies.next();
    await written(socket, "QUIT\r\n");
    return reply;
  } catch (error) {
    const reply = (error as { reply?: string }).reply;
    if (reply !== undefined) return reply;
    throw error;
  } finally {
    socket.end();
    setTimeout(() => socket.destroy(), 1_000).unref();
  }
}

/**
 * Messages numbered `first` to `end` - 1, each to queued<N>@dest.test, over
 * `sessions` SMTP sessions at once; the reply to each, in number order.
 */
export async function sendNumberedBigMails(
  port: number,
  range: { first: number; end: number; sessions: number; size: number },
): Promise<string[]> {
  const replies: string[] = [];
  let next = range.first;
  await Promise.all(Array.from({ length: range.sessions }, async () => {
    while (next < range.end) {
      const i = next++;
      replies[i - range.first] = await sendBigMail(port, {
        from: "memory@sender.test",
        to: [`queued${i}@dest.test`],
        subject: `queued ${i}`,
        size: range.size,
      });
    }
  }));
  return replies;
}

/** A process's resident memory now and its peak (VmRSS, VmHWM of /proc/PID/status), in bytes. */
export function processMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}
