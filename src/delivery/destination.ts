import type { TimerClock } from "../core/clock.ts";
import { reply } from "../core/reply.ts";
import { classifyTransportError } from "./classify.ts";
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
  /** The message, loaded when a connection is ready; undefined when it is gone. */
  loadPayload(work: Work): Promise<Payload | undefined>;
  /** Hand over the outcome of a piece of work (synchronously queued; recording is someone else's job). */
  report(work: Work, results: RecipientResult[]): void;
  /** Pause after the `failures`-th consecutive failure to reach the destination. */
  backoff(failures: number): number;
  onError(error: unknown): void;
  /** TLS reporting (RFC 8460): sessions to count for a policy domain; absent: not counted. */
  countTlsSessions?(policyDomain: string, policy: ReportPolicy, sessions: readonly TlsSession[]): void;
}

/**
 * One destination (this node's source IP x one MX site): a queue of work and
 * a pool of connections. A connection is opened only for work that no open
 * or opening connection will take (receivers count connections), and one
 * whose peer ends it while it waits in the pool leaves the pool at once.
 * A destination that cannot be reached is suspended as a whole: its queue is
 * deferred in one go, and nothing tries it again until the pause is over, so
 * a host that is down is not hammered once per message.
 */
export class Destination {
  private readonly queue: Work[] = [];
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
  private failures = 0;
  private stopping = false;
  private limits: DestinationLimits;
  suspendedUntil = 0;
  lastError: string | undefined;

  constructor(
    readonly key: string,
    private readonly deps: DestinationDeps,
  ) {
    this.limits = deps.limits;
  }

  /** The shaping rules changed (PUT /v1/shaping): connections opened and messages sent from now on follow these. */
  setLimits(limits: DestinationLimits): void {
    this.limits = limits;
    this.grow();
  }

  get size(): number {
    return this.queue.length + this.retries.length;
  }

  get idle(): boolean {
    return this.size === 0 && this.active === 0;
  }

  enqueue(work: Work): void {
    if (this.stopping) return;
    if (this.deps.clock.now() < this.suspendedUntil) {
      this.deps.report(work, this.suspendedResults(work));
      return;
    }
    const [take] = this.waiting.values();
    if (take) return take(work);
    this.queue.push(work);
    this.grow();
  }

  /**
   * Open a connection for each piece of work no opening connection will take
   * (an idle one would have taken it already), within the limit; only one at
   * a time while the destination is unproven: nothing up yet, or failing.
   */
  private grow(): void {
    while (this.size > this.opening && this.active < this.limits.maxConnections) {
      if (this.opening > 0 && (this.failures > 0 || this.active === this.opening)) return;
      this.active += 1;
      this.opening += 1;
      void this.connect().catch((error) => this.deps.onError(error));
    }
  }

  private async connect(): Promise<void> {
    let channel: Channel;
    try {
      channel = await this.deps.transport.open();
    } catch (error) {
      this.opening -= 1;
      this.active -= 1;
      if (!(error instanceof DestinationUnreachable)) throw error;
      this.unreachable(error);
      return;
    }
    this.opening -= 1;
    this.failures = 0;
    this.channels.add(channel);
    void channel.closed?.then(() => this.waiting.get(channel)?.(undefined));
    try {
      await this.serve(channel);
    } finally {
      this.channels.delete(channel);
      await channel.quit();
      this.active -= 1;
      this.grow();
    }
  }

  private async serve(channel: Channel): Promise<void> {
    const counted = new Set<string>();
    // A fresh connection (just opened, never idle) takes work given back untried first, and takes its
    // work even if the server has ended it already: that is a failed attempt then, not a reconnect loop.
    const first = this.retries.shift() ?? this.queue.shift();
    this.grow(); // the destination took a connection: open more for what is left
    // A connection above the limit (lowered meanwhile: setLimits) leaves after its message.
    const withinLimit = (sent: number) => sent === 0 || this.active <= this.limits.maxConnections;
    for (let sent = 0; sent < this.limits.maxMessagesPerConnection && withinLimit(sent) && !this.stopping; sent++) {
      const fresh = sent === 0 && first !== undefined;
      const work = fresh ? first : channel.usable ? (this.queue.shift() ?? (await this.nextWork(channel))) : undefined;
      if (!work) return;
      const results = await this.attempt(channel, work, counted);
      if (!results) continue;
      if (!fresh && !this.stopping && results.length > 0 && results.every((r) => r.untried)) {
        // It died in the pool: no attempt. Leaving frees a slot, and grow() opens a fresh connection for it.
        this.retries.push(work);
        return;
      }
      this.deps.report(work, results);
    }
  }

  /** Send one piece of work; undefined when its message is gone. */
  private async attempt(channel: Channel, work: Work, counted: Set<string>): Promise<RecipientResult[] | undefined> {
    try {
      const payload = await this.deps.loadPayload(work);
      if (!payload) return undefined;
      this.countTls(channel.tlsSessions ?? [], [work], counted);
      return await channel.send(payload);
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
      const timer = this.deps.clock.setTimeout(() => take(undefined), this.limits.idleMs);
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
    this.countTls(error.tlsSessions, [...this.retries, ...this.queue]);
    // Work given back untried waited for a fresh connection, and this one failed: a normal failed attempt.
    const failed = this.retries.splice(0);
    // With other connections up the destination works, this one attempt did not: they take the queue.
    if (this.active === 0) {
      failed.push(...this.queue.splice(0));
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
    return [...this.retries.splice(0), ...this.queue.splice(0)];
  }

  /** Stop taking work; what is queued is handed back (its leases are released by the caller). */
  stop(): Work[] {
    this.stopping = true;
    for (const take of [...this.waiting.values()]) take(undefined);
    return this.takeQueued();
  }

  /** Close every open connection at once (shutdown after the grace period). */
  closeAll(): void {
    for (const channel of this.channels) channel.close();
  }
}
