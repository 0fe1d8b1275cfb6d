/**
 * One connection to a milter as a queue of reply packets: the session
 * writes a command and awaits the packets that answer it, each wait with a
 * deadline. Replies the session has not asked for yet wait in order; past a
 * few of them the socket is paused, so a milter that floods cannot grow the
 * queue. Any failure (protocol, timeout, the peer closing) ends the
 * connection for good and every later call throws the same error.
 */
import type { Duplex } from "node:stream";
import { systemClock, type TimerClock } from "../core/clock.ts";
import { type Packet, PacketDecoder } from "./decoder.ts";
import { REPLY_CODES } from "./constants.ts";
import { MilterConnectionError, MilterError, MilterTimeoutError } from "./errors.ts";

/** Unread packets held before the socket is paused. */
const QUEUE_HIGH_WATER = 16;
/** Unanswered packets held back past this many bytes go out without waiting for one that is answered. */
const HELD_HIGH_WATER = 64 * 1024;

export class PacketChannel {
  readonly #decoder: PacketDecoder;
  readonly #queue: Packet[] = [];
  /** Packets no reply answers (macros, events the milter does not answer), to go out with the next write. */
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #failure: MilterError | undefined;
  /** Whoever waits now (for a packet, for drain): woken by data, drain and failure. */
  #waiter: (() => void) | undefined;
  #markClosed!: () => void;
  /** Settles once the stream has closed, whoever closed it. */
  readonly closed: Promise<void> = new Promise((resolve) => (this.#markClosed = resolve));

  constructor(
    private readonly stream: Duplex,
    private readonly clock: TimerClock = systemClock,
    maxPacketLength?: number,
  ) {
    this.#decoder = new PacketDecoder(REPLY_CODES, maxPacketLength);
    stream.on("data", (chunk: Uint8Array) => this.#receive(chunk));
    stream.on("drain", () => this.#waiter?.());
    stream.on("end", () => this.fail(new MilterConnectionError("the milter closed the connection")));
    stream.on("error", (error: Error) => {
      this.fail(new MilterConnectionError(`milter connection failed: ${error.message}`, { cause: error }));
    });
    stream.on("close", () => {
      this.fail(new MilterConnectionError("the milter connection is closed"));
      this.#markClosed();
    });
  }

  get failure(): MilterError | undefined {
    return this.#failure;
  }

  /**
   * Write one packet, after those held; waits (up to timeoutMs) while the
   * socket's buffer is full.
   */
  async write(packet: Uint8Array, step: string, timeoutMs: number): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#hold(packet);
    await this.#flush(step, timeoutMs);
  }

  /**
   * Keep a packet no reply answers for the next write: a message's macros,
   * headers and body go out in a few socket writes, not one a packet (each
   * costs a system call and, on loopback, a wake-up of the milter).
   */
  async hold(packet: Uint8Array, step: string, timeoutMs: number): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#hold(packet);
    if (this.#heldBytes >= HELD_HIGH_WATER) await this.#flush(step, timeoutMs);
  }

  #hold(packet: Uint8Array): void {
    this.#held.push(packet);
    this.#heldBytes += packet.byteLength;
  }

  #takeHeld(): Uint8Array {
    const held = this.#held.length === 1 ? this.#held[0]! : Buffer.concat(this.#held);
    this.#held = [];
    this.#heldBytes = 0;
    return held;
  }

  async #flush(step: string, timeoutMs: number): Promise<void> {
    if (this.#held.length > 0 && !this.stream.write(this.#takeHeld())) await this.#wait(step, timeoutMs);
  }

  /**
   * The next reply packet, within timeoutMs. Packets that arrived before the
   * milter closed are still given; after a protocol error or a timeout, none.
   * The time counts from the call: bytes that do not complete a packet do
   * not restart it, or a milter trickling one packet would never time out.
   */
  async next(step: string, timeoutMs: number): Promise<Packet> {
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const packet = this.#queue.shift();
      if (packet) {
        if (this.#queue.length < QUEUE_HIGH_WATER && this.stream.isPaused()) this.stream.resume();
        return packet;
      }
      if (this.#failure) throw this.#failure;
      await this.#wait(step, timeoutMs, deadline);
    }
  }

  /** End the connection with `error` as the reason every later call gives. */
  fail(error: MilterError): void {
    if (!this.#failure) this.#failure = error;
    if (!(error instanceof MilterConnectionError)) this.#queue.length = 0;
    this.stream.destroy();
    this.#waiter?.();
  }

  /** Write the last packet (QUIT) and close; resolves once closed, forcing it after timeoutMs. */
  async end(lastPacket: Uint8Array, timeoutMs: number): Promise<void> {
    if (!this.#failure) {
      this.#failure = new MilterConnectionError("the milter session is closed");
      this.#hold(lastPacket);
      this.stream.end(this.#takeHeld());
      // Replies nobody asked for may have paused reading; read on (and drop them), or the milter's close never arrives.
      this.stream.resume();
    }
    const timer = this.clock.setTimeout(() => this.stream.destroy(), timeoutMs);
    await this.closed;
    this.clock.clearTimeout(timer);
  }

  #receive(chunk: Uint8Array): void {
    if (this.#failure) return;
    this.#decoder.push(chunk);
    try {
      for (let packet = this.#decoder.next(); packet; packet = this.#decoder.next()) this.#queue.push(packet);
    } catch (error) {
      this.fail(error as MilterError);
      return;
    }
    if (this.#queue.length >= QUEUE_HIGH_WATER) this.stream.pause();
    this.#waiter?.();
  }

  /** Wait to be woken (data, drain, failure); at the deadline (timeoutMs from now by default), fail with a timeout. */
  async #wait(step: string, timeoutMs: number, deadline = this.clock.now() + timeoutMs): Promise<void> {
    let timer: unknown;
    try {
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        const left = Math.max(0, deadline - this.clock.now());
        timer = this.clock.setTimeout(() => this.fail(new MilterTimeoutError(step, timeoutMs)), left);
      });
    } finally {
      this.#waiter = undefined;
      this.clock.clearTimeout(timer);
    }
    if (this.#failure && this.#queue.length === 0) throw this.#failure;
  }
}
