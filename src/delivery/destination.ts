import type { TimerClock } from "../core/clock.ts";
import { DEFAULT_LANE, type Lane } from "../core/lane.ts";
import { reply } from "../core/reply.ts";
import { classifyTransportError } from "./classify.ts";
import { LaneQueue } from "./lane-queue.ts";
import type { DestinationMeter } from "./meter.ts";
import { type Gate, OPEN_GATE } from "./pacing.ts";
import type { ReportPolicy } from "./tls-report/policy.ts";
import type { TlsSession } from "./tls-report/session.ts";
import {
  type Channel,
  DestinationUnreachable,
  type Payload,
  type RecipientResult,
  type Transport,
  type Work,
} from "./work.ts";

export interface DestinationLimits {
  /** Connections open at once to this destination. */
  readonly maxConnections: number;
  /** Messages sent over one connection before it is closed and a fresh one opened. */
  readonly maxMessagesPerConnection: number;
  /** How long an idle connection waits for more work before QUIT. */
  readonly idleMs: number;
}

export interface DestinationDeps {
  readonly transport: Transport;
  readonly clock: TimerClock;
  readonly limits: DestinationLimits;
  /** When the next message may go (rates, warmup, automation); absent: whenever a connection is free. */
  readonly messages?: Gate;
  /** When the next connection may be opened; absent: whenever the limit of connections allows. */
  readonly connections?: Gate;
  /**
   * Hand back work that cannot go before `at` (no attempt): it waits in the
   * queue rather than in memory, due when its turn comes.
   */
  postpone(work: Work, at: number): void;
  /** The message, loaded when a connection is ready; undefined when it is gone. */
  loadPayload(work: Work): Promise<Payload | undefined>;
  /** Hand over the outcome of a piece of work (synchronously queued; recording is someone else's job). */
  report(work: Work, results: RecipientResult[]): void;
  /** Pause after the `failures`-th consecutive failure to reach the destination. */
  backoff(failures: number): number;
  onError(error: unknown): void;
  /** TLS reporting (RFC 8460): sessions to count for a policy domain; absent: not counted. */
  countTlsSessions?(policyDomain: string, policy: ReportPolicy, sessions: readonly TlsSession[]): void;
  /** Metrics: connections and the time of each attempt; absent: not measured. */
  readonly meter?: DestinationMeter;
}

/**
 * One destination (this node's source IP x one MX site): a queue of work and
 * a pool of connections. A connection is opened only for work that no open
 * or opening connection will take (receivers count connections), and one
 * whose peer ends it while it waits in the pool leaves the pool at once.
 * A destination that cannot be reached is suspended as a whole: its queue is
 * deferred in one go, and nothing tries it again until the pause is over, so
 * a host that is down is not hammered once per message.
 *
 * Pacing: a message goes only when the message gate lets it, a connection is
 * opened only when the connection gate does. Work is kept in memory only for
 * what can go within PACING_HORIZON_MS; the rest is handed back with the time
 * its turn is foreseen (postponed), so a destination limited to 100 messages
 * an hour costs nothing while a million recipients wait for it, and takes
 * none of the scheduler's room for work in flight. Each lane keeps its own
 * order: new work is given a turn after the last one handed out, work that
 * comes back at its turn (it holds a slot) goes at once.
 */
export class Destination {
  private readonly queue = new LaneQueue<Work>();
  /**
   * Work that a connection reused from the pool gave back untried (it had
   * died there): no attempt. Only a fresh connection takes it, and should
   * that fail too, that is a normal failed attempt, so nothing loops.
   */
  private readonly retries: Work[] = [];
  /** Connections waiting in the pool, oldest first, each with how to hand it work (or nothing: leave). */
  private readonly waiting = new Map<Channel, (work: Work | undefined) => void>();
  private readonly channels = new Set<Channel>();
  /** Connections open or opening. */
  private active = 0;
  private opening = 0;
  /** Connections waiting for the message gate to open, each to take the next queued work. */
  private pausing = 0;
  private failures = 0;
  private stopping = false;
  /** The last turn handed out with postponed work, per lane: new work goes after it. */
  private readonly lastTurn: Record<Lane, number> = { transactional: 0, bulk: 0 };
  /** Wakes the destination when a gate opens for queued work. */
  private gateTimer: { at: number; handle: unknown } | undefined;
  /** Unreachable: work that comes is deferred without an attempt until then. */
  suspendedUntil = 0;
  /** Held (automation or the operator): work that comes is postponed until then. */
  heldUntil = 0;
  lastError: string | undefined;

  constructor(
    readonly key: string,
    private readonly deps: DestinationDeps,
  ) {}

  /**
   * The shaping rules changed (PUT /v1/shaping): its limits and gates, read
   * at each use, are the new ones; those that allow more now open more.
   */
  reshaped(): void {
    if (!this.stopping) this.pump();
  }

  private get messages(): Gate {
    return this.deps.messages ?? OPEN_GATE;
  }

  private get connections(): Gate {
    return this.deps.connections ?? OPEN_GATE;
  }

  get size(): number {
    return this.queue.length + this.retries.length;
  }

  /** Nothing queued, connected or promised: it may be forgotten. */
  get idle(): boolean {
    const now = this.deps.clock.now();
    return this.size === 0 && this.active === 0 && this.lastTurn.transactional <= now && this.lastTurn.bulk <= now &&
      this.heldUntil <= now;
  }

  enqueue(work: Work): void {
    if (this.stopping) return;
    const now = this.deps.clock.now();
    if (now < this.suspendedUntil) {
      this.deps.report(work, this.suspendedResults(work));
      return;
    }
    if (now < this.heldUntil) {
      this.deps.postpone(work, this.heldUntil);
      return;
    }
    const lane = laneOf(work);
    const turn = this.turnOf(work, lane, now);
    if (turn > now + PACING_HORIZON_MS) {
      if (!holdsTurn(work)) this.lastTurn[lane] = turn;
      this.deps.postpone(work, turn);
      return;
    }
    this.queue.push(work, lane);
    this.pump();
  }

  /**
   * When this work's turn is foreseen: after what waits before it in its
   * lane, at the gate's spacing; new work also after the last turn handed out.
   */
  private turnOf(work: Work, lane: Lane, now: number): number {
    const spacing = this.messages.spacing(lane);
    const turn = this.messages.nextAt(now, lane) + this.queue.ahead(lane) * spacing;
    return holdsTurn(work) ? turn : Math.max(turn, this.lastTurn[lane] > now ? this.lastTurn[lane] + spacing : 0);
  }

  /**
   * Hold the destination until `until` (automation, the operator): what is
   * queued is postponed to then, pooled connections leave; work in flight
   * finishes. A later hold replaces an earlier one.
   */
  hold(until: number): void {
    this.heldUntil = until;
    for (const work of [...this.retries.splice(0), ...this.queue.drain()]) this.deps.postpone(work, until);
    for (const take of [...this.waiting.values()]) take(undefined);
  }

  /** End a hold now. */
  release(): void {
    this.heldUntil = 0;
  }

  /** Hand queued work to pooled connections while the gate lets it go, then open more connections if needed. */
  private pump(): void {
    const now = this.deps.clock.now();
    for (const take of this.waiting.values()) {
      const lane = this.queue.nextLane();
      if (lane === undefined) break;
      const at = this.messages.nextAt(now, lane);
      if (at > now) {
        this.wakeAt(at);
        break;
      }
      this.messages.take(now, lane);
      take(this.queue.shift());
    }
    this.grow();
  }

  /**
   * Open a connection for each piece of work no opening connection will take
   * (an idle one would have taken it already), within the limit, when the
   * connection gate lets one open and a message can go (for the first one:
   * before it would idle out); only one at a time while the destination is unproven: nothing up yet, or failing.
   */
  private grow(): void {
    while (this.unserved > this.opening && this.active < this.deps.limits.maxConnections) {
      if (this.opening > 0 && (this.failures > 0 || this.active === this.opening)) return;
      const now = this.deps.clock.now();
      const lane = this.retries.length > 0 ? DEFAULT_LANE : this.queue.nextLane()!;
      // A first connection may wait for the message gate as long as it would idle; another opens only
      // when a message can go now and no connection is waiting for the gate: they are all busy sending.
      if (this.active > 0 && this.pausing > 0) return;
      const sendable = this.messages.nextAt(now, lane) - (this.active === 0 ? this.deps.limits.idleMs : 0);
      const at = Math.max(this.connections.nextAt(now, lane), sendable);
      if (at > now) return this.wakeAt(at);
      this.connections.take(now, lane);
      this.active += 1;
      this.opening += 1;
      void this.connect().catch((error) => this.deps.onError(error));
    }
  }

  /** Work that needs a connection opened: what was given back untried, and what connections up will not take. */
  private get unserved(): number {
    return this.retries.length + Math.max(0, this.queue.length - this.waiting.size - this.pausing);
  }

  /** Pump again at `at` (one timer, the earliest asked for). */
  private wakeAt(at: number): void {
    if (this.gateTimer && this.gateTimer.at <= at) return;
    if (this.gateTimer) this.deps.clock.clearTimeout(this.gateTimer.handle);
    const handle = this.deps.clock.setTimeout(() => {
      this.gateTimer = undefined;
      if (!this.stopping) this.pump();
    }, at - this.deps.clock.now());
    this.gateTimer = { at, handle };
  }

  private async connect(): Promise<void> {
    let channel: Channel;
    try {
      channel = await this.deps.transport.open();
    } catch (error) {
      this.opening -= 1;
      this.active -= 1;
      this.deps.meter?.connectionFailed();
      if (!(error instanceof DestinationUnreachable)) throw error;
      this.unreachable(error);
      return;
    }
    this.opening -= 1;
    this.failures = 0;
    this.deps.meter?.connectionOpened();
    this.channels.add(channel);
    void channel.closed?.then(() => this.waiting.get(channel)?.(undefined));
    try {
      await this.serve(channel);
    } finally {
      this.channels.delete(channel);
      await channel.quit();
      this.deps.meter?.connectionClosed();
      this.active -= 1;
      this.grow();
    }
  }

  private async serve(channel: Channel): Promise<void> {
    const counted = new Set<string>();
    // A fresh connection (just opened, never idle) takes work given back untried first, and takes its
    // work even if the server has ended it already: that is a failed attempt then, not a reconnect loop.
    let fresh = true;
    // A connection above the limit (lowered meanwhile: the rules changed, or a throttle) leaves after its message.
    const withinLimit = (sent: number) => sent === 0 || this.active <= this.deps.limits.maxConnections;
    for (let sent = 0; sent < this.deps.limits.maxMessagesPerConnection && withinLimit(sent) && !this.stopping;) {
      if (!fresh && !channel.usable) return;
      const next = this.nextFor(channel, fresh);
      if (typeof next === "number") {
        // The gate opens soon: wait on this connection rather than open another later.
        if (next > this.deps.limits.idleMs) return;
        await this.pause(next);
        fresh = false;
        continue;
      }
      if (fresh) this.grow(); // the destination took a connection: open more for what is left
      const work = await next;
      const wasFresh = fresh;
      fresh = false;
      if (!work) return;
      sent += 1;
      const results = await this.attempt(channel, work, counted);
      if (!results) continue;
      if (!wasFresh && !this.stopping && results.length > 0 && results.every((r) => r.untried)) {
        // It died in the pool: no attempt. Leaving frees a slot, and grow() opens a fresh connection for it.
        this.retries.push(work);
        return;
      }
      this.deps.report(work, results);
    }
  }

  /**
   * The connection's next work: given back untried (a fresh connection only:
   * it went through the gate already), queued and let through by the gate,
   * or waited for in the pool; or how long until the gate lets queued work go.
   */
  private nextFor(channel: Channel, fresh: boolean): Promise<Work | undefined> | number {
    if (fresh && this.retries.length > 0) return Promise.resolve(this.retries.shift());
    const lane = this.queue.nextLane();
    if (lane === undefined) return fresh ? Promise.resolve(undefined) : this.nextWork(channel);
    const now = this.deps.clock.now();
    const at = this.messages.nextAt(now, lane);
    if (at > now) {
      this.wakeAt(at);
      return at - now;
    }
    this.messages.take(now, lane);
    return Promise.resolve(this.queue.shift());
  }

  private async pause(ms: number): Promise<void> {
    this.pausing += 1;
    await new Promise<void>((resolve) => this.deps.clock.setTimeout(resolve, ms));
    this.pausing -= 1;
  }

  /** Send one piece of work; undefined when its message is gone. */
  private async attempt(channel: Channel, work: Work, counted: Set<string>): Promise<RecipientResult[] | undefined> {
    try {
      const payload = await this.deps.loadPayload(work);
      if (!payload) return undefined;
      this.countTls(channel.tlsSessions ?? [], [work], counted);
      const started = this.deps.clock.now();
      const results = await channel.send(payload);
      const durationMs = this.deps.clock.now() - started;
      this.deps.meter?.attempted(durationMs);
      return results.map((result) => ({ ...result, durationMs }));
    } catch (error) {
      this.deps.onError(error);
      const r = reply(451, "4.3.0", "local error during delivery");
      return work.claims.map((c) => ({ address: c.address, reply: r, disposition: "deferred", category: "other" }));
    }
  }

  /** Wait in the pool for work; undefined after the idle time, or as soon as the connection ends. */
  private nextWork(channel: Channel): Promise<Work | undefined> {
    return new Promise((resolve) => {
      const take = (work: Work | undefined) => {
        this.deps.clock.clearTimeout(timer);
        this.waiting.delete(channel);
        resolve(work);
      };
      const timer = this.deps.clock.setTimeout(() => take(undefined), this.deps.limits.idleMs);
      this.waiting.set(channel, take);
    });
  }

  /**
   * RFC 8460 4.2 counts sessions, not messages: a connection counts once for
   * each policy domain whose mail it carries (`counted` holds those already
   * counted), and a failure to connect once for each domain that waited for it.
   */
  private countTls(sessions: readonly TlsSession[], works: readonly Work[], counted = new Set<string>()): void {
    if (!this.deps.countTlsSessions || sessions.length === 0) return;
    for (const work of works) {
      for (const [domain, policy] of work.tlsReport ?? []) {
        if (counted.has(domain)) continue;
        counted.add(domain);
        this.deps.countTlsSessions(domain, policy, sessions);
      }
    }
  }

  private unreachable(error: DestinationUnreachable): void {
    this.lastError = error.message;
    this.countTls(error.tlsSessions, [...this.retries, ...this.queue.items()]);
    // Work given back untried waited for a fresh connection, and this one failed: a normal failed attempt.
    const failed = this.retries.splice(0);
    // With other connections up the destination works, this one attempt did not: they take the queue.
    if (this.active === 0) {
      failed.push(...this.queue.drain());
      // A permanent refusal (REQUIRETLS that no host meets, RFC 8689 4.2.1) is no outage to back off from.
      if (error.classification.disposition === "deferred") {
        this.failures += 1;
        this.suspendedUntil = this.deps.clock.now() + this.deps.backoff(this.failures);
      }
    }
    for (const work of failed) {
      this.deps.report(
        work,
        work.claims.map((c) => ({
          address: c.address,
          reply: error.reply,
          ...error.classification,
          remoteMta: error.remoteMta,
          remoteIp: error.remoteIp,
          localIp: error.localIp,
        })),
      );
    }
  }

  private suspendedResults(work: Work): RecipientResult[] {
    const r = reply(451, "4.4.1", `destination suspended after: ${this.lastError ?? "a failure"}`);
    return work.claims.map((c) => ({
      address: c.address,
      reply: r,
      ...classifyTransportError("connect"),
      attempted: false,
      retryAt: this.suspendedUntil,
    }));
  }

  /** Hand back the work no connection has taken yet (an operator suspended or bounced the destination). */
  takeQueued(): Work[] {
    return [...this.retries.splice(0), ...this.queue.drain()];
  }

  /** Stop taking work; what is queued is handed back (its leases are released by the caller). */
  stop(): Work[] {
    this.stopping = true;
    if (this.gateTimer) this.deps.clock.clearTimeout(this.gateTimer.handle);
    for (const take of [...this.waiting.values()]) take(undefined);
    return this.takeQueued();
  }

  /** Close every open connection at once (shutdown after the grace period). */
  closeAll(): void {
    for (const channel of this.channels) channel.close();
  }
}

/** Work kept in memory: what can go within this long; the rest waits in the queue for its turn. */
export const PACING_HORIZON_MS = 10_000;

/** A message's recipients share its lane. */
const laneOf = (work: Work): Lane => work.claims[0]?.lane ?? DEFAULT_LANE;

/** Work back at the turn it was postponed to: it goes in its turn, not after newer work. */
const holdsTurn = (work: Work): boolean => work.claims.some((c) => c.turnAt !== undefined);
