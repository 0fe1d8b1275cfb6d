/**
 * The abusive SMTP clients of scripts/attack: each one connects from its own
 * loopback source address (all of 127/8 is loopback on Linux) and misbehaves
 * in one way until it is told to stop, its deadline passes or its bounded
 * budget runs out. Nothing here waits without a bound.
 *
 *   slowloris   a byte every few seconds, so the idle timer never fires
 *   hold        connects and never says a word (or STARTTLS, then no handshake)
 *   garbage     random bytes and unknown commands, reconnecting when cut off
 *   oversized   a command line far over 1000 octets, then DATA that never ends
 *   auth        STARTTLS, then AUTH PLAIN and LOGIN with wrong passwords, as fast as answered
 */
import { SmtpTalk } from "../test/helpers/smtp-talk.ts";

export const ABUSE_KINDS = ["slowloris", "hold", "garbage", "oversized", "auth"] as const;
export type AbuseKind = (typeof ABUSE_KINDS)[number];

/** What the connections of one kind got. */
export interface AbuseTally {
  /** Connections tried (a reconnect counts again). */
  connections: number;
  /** Greeted with 220. */
  greeted: number;
  /** Refused at connect (a 421 greeting) or the TCP connect failed. */
  refused: number;
  /** Replies by code and enhanced code, e.g. "421 4.7.0": greetings and refusals included. */
  replies: Record<string, number>;
  /** Connections the relay closed (after its last reply, or silently). */
  closedByRelay: number;
  /** Connections still open when the attack stopped. */
  openAtStop: number;
  bytesSent: number;
}

/** The AUTH guessers, per source address: how many wrong passwords were checked before the lockout. */
export interface AuthTally {
  /** Wrong passwords answered 535 (checked), per address. */
  readonly checkedPerAddress: Record<string, number>;
  /** Answers saying the address is locked out (the throttle's 454 4.7.0). */
  lockedOut: number;
  /** The most wrong passwords checked from one address. */
  mostCheckedFromOneAddress: number;
}

export interface AbuseContext {
  readonly port: number;
  /** A seeded generator in [0, 1). */
  readonly random: () => number;
  /** The relay's user, guessed at with wrong passwords. */
  readonly user: string;
  /** The domain anyone may send to (RELAY_BOUNCE_DOMAIN): how an outsider gets to DATA. */
  readonly bounceDomain: string;
  /** How much DATA an oversized connection sends before it just holds. */
  readonly oversizedBytes: number;
  /** The pause between slowloris bytes. */
  readonly slowByteMs: number;
  readonly stopped: () => boolean;
  readonly deadline: number;
  /** Every connection open now; the runner hangs them all up at stop, so nothing waits for a reply then. */
  readonly live: Set<{ hangUp(): void }>;
}

export const newTally = (): AbuseTally => ({
  connections: 0,
  greeted: 0,
  refused: 0,
  replies: {},
  closedByRelay: 0,
  openAtStop: 0,
  bytesSent: 0,
});

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

/**
 * How a reply is counted: "535 5.7.8" from "535 5.7.8 authentication credentials invalid",
 * "334" from "334 VXNlcm5hbWU6"; a 421 keeps its reason, without the host name:
 * "421 4.7.0 Too many errors, closing channel".
 */
export const replyKey = (reply: string): string => {
  const last = reply.split("\r\n").at(-1)!;
  const code = /^\d{3}(?: [245]\.\d{1,3}\.\d{1,3})?/.exec(last)?.[0] ?? last.slice(0, 3);
  return code.startsWith("421") ? `${code} ${last.slice(code.length).trim().replace(/^\S+\.\S+ /, "")}` : code;
};

/** One connection's bookkeeping around a SmtpTalk. */
class Abuser {
  talk?: SmtpTalk;
  /** Bytes this connection sent. */
  sent = 0;
  /** The relay's close of the current connection is counted. */
  #closedNoted = false;
  /** Hung up at stop: a close from now on is ours. */
  #hungUp = false;

  constructor(readonly ctx: AbuseContext, readonly tally: AbuseTally, readonly from: string) {}

  get running(): boolean {
    return !this.ctx.stopped() && Date.now() < this.ctx.deadline;
  }

  /** Connect and read the greeting; false when refused or cut. */
  async open(): Promise<boolean> {
    this.tally.connections++;
    this.#closedNoted = false;
    try {
      this.talk = await SmtpTalk.open(this.ctx.port, "127.0.0.1", this.from);
    } catch {
      this.tally.refused++;
      return false;
    }
    this.ctx.live.add(this);
    const greeting = await this.reply();
    if (greeting?.startsWith("220")) {
      this.tally.greeted++;
      return true;
    }
    if (greeting !== undefined) this.tally.refused++;
    this.close();
    return false;
  }

  /** The next reply, counted; undefined when the relay closed the connection or said nothing in time. */
  async reply(timeoutMs = 30_000): Promise<string | undefined> {
    const talk = this.talk!;
    try {
      const answer = await talk.reply(Math.max(1, Math.min(timeoutMs, this.ctx.deadline - Date.now())));
      this.count(answer);
      return answer;
    } catch {
      if (talk.closed) this.noteClosed();
      return undefined;
    }
  }

  count(answer: string): void {
    const code = replyKey(answer);
    this.tally.replies[code] = (this.tally.replies[code] ?? 0) + 1;
  }

  /** Replies already here, without waiting. */
  async collect(): Promise<void> {
    while (this.talk && !this.talk.closed) {
      if ((await this.reply(1)) === undefined) return;
    }
    if (this.talk?.closed) this.noteClosed();
  }

  write(data: string | Uint8Array): void {
    if (!this.talk || this.talk.closed) return;
    this.talk.write(data);
    this.sent += data.length;
    this.tally.bytesSent += data.length;
  }

  async command(line: string): Promise<string | undefined> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  noteClosed(): void {
    if (this.#closedNoted || this.#hungUp) return;
    this.#closedNoted = true;
    this.tally.closedByRelay++;
  }

  get closed(): boolean {
    return this.talk === undefined || this.talk.closed;
  }

  /** At stop: hang up, counted as still open if the relay had not closed it. */
  hangUp(): void {
    if (this.talk && !this.talk.closed && !this.#closedNoted) this.tally.openAtStop++;
    this.#hungUp = true;
    this.close();
  }

  close(): void {
    this.ctx.live.delete(this);
    this.talk?.close();
  }

  /** Before connecting again: a second after a refusal (the relay said "try again later"), else a moment. */
  async pause(greeted: boolean): Promise<void> {
    if (this.running) await sleep(greeted ? 100 : 1_000);
  }

  /** Wait until stop or the deadline, seeing whether the relay closes the connection meanwhile. */
  async holdOn(): Promise<void> {
    while (this.running && !this.closed) {
      await sleep(200);
      await this.collect();
    }
  }
}

async function slowloris(a: Abuser): Promise<void> {
  if (!(await a.open())) return;
  const script = "EHLO slow.example\r\nMAIL FROM:<slow@slow.example>\r\nNOOP\r\n";
  for (let i = 0; a.running && !a.closed; i++) {
    a.write(script[i % script.length]!);
    const pause = a.ctx.slowByteMs * (0.5 + a.ctx.random());
    for (const until = Date.now() + pause; a.running && !a.closed && Date.now() < until;) await sleep(100);
    await a.collect();
  }
  a.close();
}

async function hold(a: Abuser, n: number): Promise<void> {
  if (!(await a.open())) return;
  // Every other one asks for TLS and never starts the handshake.
  if (n % 2 === 1) await a.command("STARTTLS");
  await a.holdOn();
  a.close();
}

const GARBAGE_COMMANDS = ["XYZZY", "HELLO WORLD", "GET / HTTP/1.1", "MAIL TO:<>", "RCPT", "\u00ff\u00fe", "DATA DATA"];

async function garbage(a: Abuser): Promise<void> {
  // Reconnect when cut off: the relay decides how long each connection lasts.
  for (let tries = 0; a.running && tries < 1000; tries++) {
    const greeted = await a.open();
    if (greeted) {
      while (a.running && !a.closed) {
        if (a.ctx.random() < 0.5) {
          const bytes = new Uint8Array(16 + Math.floor(a.ctx.random() * 200));
          for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(a.ctx.random() * 256);
          a.write(bytes);
          a.write("\r\n");
          // Random bytes may hold several bare line ends, or be part of a longer line: read what comes.
          await sleep(20);
          await a.collect();
        } else {
          const line = GARBAGE_COMMANDS[Math.floor(a.ctx.random() * GARBAGE_COMMANDS.length)]!;
          await a.command(line);
        }
      }
      a.close();
    }
    await a.pause(greeted);
  }
}

async function oversized(a: Abuser): Promise<void> {
  if (!(await a.open())) return;
  // A command line 100 times the limit of RFC 5321 4.5.3.1.4.
  await a.command(`EHLO ${"x".repeat(51_200)}`);
  await a.command("EHLO big.example");
  await a.command(`MAIL FROM:<big@big.example> ${"X-PAD=".repeat(2_000)}`);
  await a.command("MAIL FROM:<big@big.example>");
  const rcpt = await a.command(`RCPT TO:<postmaster@${a.ctx.bounceDomain}>`);
  const data = rcpt?.startsWith("250") ? await a.command("DATA") : undefined;
  if (data?.startsWith("354")) {
    // Message text in lines far over 998 octets, never ended by a dot.
    const chunk = `${"y".repeat(64 * 1024 - 2)}\r\n`;
    while (a.running && !a.closed && a.sent < a.ctx.oversizedBytes) {
      a.write(chunk);
      await sleep(5);
    }
  }
  await a.holdOn();
  a.close();
}

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

async function auth(a: Abuser, tally: AuthTally): Promise<void> {
  const counted = (answer: string | undefined) => {
    if (answer?.startsWith("535")) {
      tally.checkedPerAddress[a.from] = (tally.checkedPerAddress[a.from] ?? 0) + 1;
      tally.mostCheckedFromOneAddress = Math.max(tally.mostCheckedFromOneAddress, tally.checkedPerAddress[a.from]!);
    }
    if (answer?.startsWith("454")) tally.lockedOut++;
  };
  for (let tries = 0; a.running && tries < 200; tries++) {
    const greeted = await a.open();
    if (greeted) {
      await a.command("EHLO guess.example");
      let secure = false;
      try {
        const ready = await a.talk!.startTls();
        a.count(ready);
        secure = ready.startsWith("220");
      } catch {
        if (a.closed) a.noteClosed();
      }
      if (secure) await a.command("EHLO guess.example");
      for (let n = 0; secure && a.running && !a.closed; n++) {
        const password = `guess-${Math.floor(a.ctx.random() * 1e9)}`;
        if (n % 2 === 0) {
          counted(await a.command(`AUTH PLAIN ${base64(`\0${a.ctx.user}\0${password}`)}`));
        } else {
          const user = await a.command("AUTH LOGIN");
          const pass = user?.startsWith("334") ? await a.command(base64(a.ctx.user)) : undefined;
          counted(pass?.startsWith("334") ? await a.command(base64(password)) : pass ?? user);
        }
      }
      a.close();
    }
    await a.pause(greeted);
  }
}

/** Run one abusive connection of `kind` from `from` until stopped; its findings go into the tallies. */
export function abuse(
  kind: AbuseKind,
  /** Which one of its kind this is. */
  n: number,
  ctx: AbuseContext,
  from: string,
  tally: AbuseTally,
  authTally: AuthTally,
): Promise<void> {
  const a = new Abuser(ctx, tally, from);
  switch (kind) {
    case "slowloris":
      return slowloris(a);
    case "hold":
      return hold(a, n);
    case "garbage":
      return garbage(a);
    case "oversized":
      return oversized(a);
    case "auth":
      return auth(a, authTally);
  }
}
