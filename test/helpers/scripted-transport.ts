/**
 * A delivery transport for unit tests of the destination and the scheduler:
 * connections that behave as the test scripts (slow, dead, ended by the
 * peer, refused) and count what was sent over them, with no network.
 */
import { reply } from "../../src/core/reply.ts";
import { classifyReply, classifyTransportError } from "../../src/delivery/classify.ts";
import {
  type Channel,
  DestinationUnreachable,
  type Payload,
  type RecipientResult,
  type Transport,
} from "../../src/delivery/work.ts";

const OK = reply(250, "2.0.0", "ok");
const GONE = reply(451, "4.4.2", "connection closed before these recipients were tried");
const CLOSED = reply(421, "4.4.2", "connection closed during the transaction");

/**
 * A connection whose sends deliver; or (dead, its peer gone unnoticed) leave
 * every recipient untried; or, closed while a send waits, defer it.
 */
export class Connection implements Channel {
  readonly remoteMta = "mx.test";
  usable = true;
  dead = false;
  readonly sent: string[] = [];
  readonly closed: Promise<void>;
  private end!: () => void;

  constructor(
    readonly id: number,
    private readonly transport: ScriptedTransport,
    /** While set, a send waits for it (a slow receiver). */
    readonly gate: Promise<void> | undefined,
  ) {
    this.closed = new Promise((resolve) => (this.end = resolve));
  }

  async send(payload: Payload): Promise<RecipientResult[]> {
    this.sent.push(payload.messageId);
    this.transport.payloads.push(payload);
    if (this.dead || !this.usable) {
      this.close();
      return payload.recipients.map((address) => ({
        address,
        reply: GONE,
        ...classifyTransportError("disconnect"),
        untried: true,
      }));
    }
    const t = this.transport;
    t.peakSending = Math.max(t.peakSending, ++t.sending);
    try {
      await (t.ignoresClose ? this.gate : Promise.race([this.gate, this.closed]));
    } finally {
      t.sending--;
    }
    if (!this.usable) {
      return payload.recipients.map((address) => ({ address, reply: CLOSED, ...classifyTransportError("disconnect") }));
    }
    return payload.recipients.map((address) => ({ address, reply: OK, ...classifyReply(OK) }));
  }

  /** The peer ends the connection and the client notices (FIN, RST, or a 421 while idle). */
  peerEnds(): void {
    this.close();
  }

  async quit(): Promise<void> {
    this.close();
  }

  close(): void {
    this.usable = false;
    this.end();
  }
}

/** Opens connections as the test scripts: each `open` makes the next Connection, or fails when `refuse` is set. */
export class ScriptedTransport implements Transport {
  readonly connections: Connection[] = [];
  /** Every payload sent, on any connection, in order. */
  readonly payloads: Payload[] = [];
  opened = 0;
  refuse: DestinationUnreachable | undefined;
  /** Opening waits until release() while held. */
  held = false;
  /** What the next connections are like: dead already (their peer gone unnoticed), ended by the server before any use, or slow to answer. */
  dead = false;
  endedAtOnce = false;
  gate: Promise<void> | undefined;
  /** A send waits for the gate even when its connection is closed meanwhile. */
  ignoresClose = false;
  /** Sends in progress now, and the most at once so far. */
  sending = 0;
  peakSending = 0;
  private readonly waiting: (() => void)[] = [];

  async open(): Promise<Channel> {
    this.opened++;
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.refuse) throw this.refuse;
    // A reconnect loop would never yield to the test: cut it short here, and let `opened` show it.
    if (this.opened > 100) {
      throw new DestinationUnreachable(reply(421, "4.3.2", "reconnect loop"), { disposition: "deferred" });
    }
    const connection = new Connection(this.connections.length + 1, this, this.gate);
    connection.dead = this.dead;
    if (this.endedAtOnce) connection.peerEnds();
    this.connections.push(connection);
    return connection;
  }

  release(): void {
    this.held = false;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}
