import assert from "node:assert/strict";
import * as net from "node:net";

/** Raw SMTP over a socket (plain or TLS): whole replies, "" once the server has closed. */
export class Wire {
  buffer = "";
  closed = false;
  #wake?: () => void;
  constructor(readonly socket: net.Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => ((this.buffer += d), this.#wake?.()));
    socket.on("error", () => {});
    // "end" as well as "close": the server's FIN is enough to know nothing more comes.
    socket.on("end", () => ((this.closed = true), this.#wake?.()));
    socket.on("close", () => ((this.closed = true), this.#wake?.()));
  }
  static open(port: number, localAddress?: string): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => resolve(new Wire(s)));
      s.once("error", reject);
    });
  }
  async closedP(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => (this.#wake = r));
  }
  /** The next whole reply as sent, CRLF kept. */
  async raw(): Promise<string> {
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.buffer);
      if (m) return (this.buffer = this.buffer.slice(m[0].length)), m[0];
      if (this.closed) return "";
      await new Promise<void>((r) => (this.#wake = r));
    }
  }
  async reply(): Promise<string> {
    return (await this.raw()).trimEnd();
  }
  async replies(n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.reply());
    return out;
  }
  send(data: string | Uint8Array): void {
    this.socket.write(data);
  }
  cmd(line: string): Promise<string> {
    this.send(line + "\r\n");
    return this.reply();
  }
  /** Greeting, EHLO, MAIL, one RCPT. */
  async ready(): Promise<string> {
    await this.reply();
    const ehlo = await this.cmd("EHLO client.test");
    assert.equal(await this.cmd("MAIL FROM:<a@x.test>"), "250 2.1.0 Sender OK");
    assert.equal(await this.cmd("RCPT TO:<b@x.test>"), "250 2.1.5 Recipient OK");
    return ehlo;
  }
}
