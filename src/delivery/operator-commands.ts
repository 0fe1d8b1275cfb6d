import { asciiDomain, domainNameError } from "../core/address.ts";
import type { Clock } from "../core/clock.ts";
import { type Reply, reply, replyText } from "../core/reply.ts";
import type { Claim } from "../queue/records.ts";
import type { RecipientSelector } from "../queue/recipient-selector.ts";
import type { QueueStore } from "../queue/store.ts";
import type { DestinationChange } from "../shaping/destination-automation.ts";
import type { DestinationBook, DestinationEntry, DestinationInfo, Suspension } from "./destination-book.ts";
import type { DestinationRegistry, LiveState } from "./destination-registry.ts";
import type { Plan } from "./plan.ts";
import type { SteeringDeps } from "./steering.ts";
import type { TlsRule } from "./tls-rule.ts";
import type { RecipientResult, Work } from "./work.ts";

/** A destination as GET /v1/queue shows it, with what this node holds for it now. */
export interface DestinationState extends LiveState {
  readonly info: DestinationInfo;
  /** Recipient domains routed to it (and those its suspension holds). */
  readonly domains: readonly string[];
  /** The operator's suspension in force. */
  readonly suspension?: Suspension;
  readonly lastReply?: DestinationEntry["lastReply"];
}

/** What an operator's request for a destination found: the destination and the recipient domains it holds. */
export type ResolvedDestination =
  | { readonly found: true; readonly key: string; readonly name: string; readonly domains: readonly string[] }
  | { readonly found: false; readonly reason: string };

type Found = Extract<ResolvedDestination, { found: true }>;

/** What the operator's commands ask of the delivery loop (scheduler.ts). */
export interface DeliveryLoopControls {
  /** Route a domain's mail held to a TLS rule, as a message to it would be (a failure: deferred). */
  plan(domain: string, rule: TlsRule): Promise<Plan>;
  /** Give work back to the queue untried, due at `until`. */
  hold(works: readonly Work[], until: number): void;
  /** Record outcomes of work the loop counts in flight, on the retry schedule given. */
  report(work: Work, results: RecipientResult[], retry: readonly number[]): void;
  /** Claims leased outside the loop: in flight until their outcome settles them. */
  leased(claims: readonly Claim[]): void;
  /** Look for due recipients now. */
  wake(): void;
}

export interface OperatorCommandsDeps {
  readonly store: Pick<QueueStore, "moveHeld" | "byDomain" | "claimForBounce" | "control">;
  readonly clock: Clock;
  /** The destinations known, with the operator's suspensions. */
  readonly book: DestinationBook;
  /** The destinations open now (destination-registry.ts). */
  readonly live: Pick<DestinationRegistry, "takeQueued" | "unpause" | "resumeAutomation" | "stateOf">;
  readonly loop: DeliveryLoopControls;
  /** Bounced recipients are leased this many at a time, for this long. */
  readonly batch: number;
  readonly leaseMs: number;
  /** The retry schedule recorded with the operator's bounces: the shaping rules' default level's. */
  readonly retrySchedule: readonly number[];
  /** Where a destination's change of state goes, for the event log (SteeringDeps.changed); absent: nowhere. */
  readonly changed?: SteeringDeps["changed"];
}

/**
 * The operator's commands on destinations (GET /v1/queue, its actions, and
 * the CLI's): find one by name or recipient domain, suspend, resume, retry,
 * bounce or hold it, bounce a message's recipients, and the state of each.
 */
export class OperatorCommands {
  constructor(private readonly deps: OperatorCommandsDeps) {}

  /** The destinations this node knows (routed to lately, or suspended), with their state now. */
  destinationStates(): DestinationState[] {
    const now = this.deps.clock.now();
    const suspended = new Map(this.deps.book.suspended(now));
    const states: DestinationState[] = [];
    for (const entry of this.deps.book.all()) {
      const key = entry.info.key;
      states.push(this.stateOf(key, entry.info, suspended.get(key), now));
      suspended.delete(key);
    }
    for (const [key, suspension] of suspended) {
      const info: DestinationInfo = { key, name: suspension.name, mxHosts: [], shaping: () => undefined };
      states.push(this.stateOf(key, info, suspension, now));
    }
    return states;
  }

  private stateOf(
    key: string,
    info: DestinationInfo,
    suspension: Suspension | undefined,
    now: number,
  ): DestinationState {
    const entry = this.deps.book.entry(key);
    return {
      info,
      domains: [...new Set([...(entry?.domains ?? []), ...(suspension?.domains ?? [])])],
      ...(suspension ? { suspension } : {}),
      ...(entry?.lastReply ? { lastReply: entry.lastReply } : {}),
      ...this.deps.live.stateOf(key, now),
    };
  }

  /**
   * The destination `ref` names: a destination's name (as GET /v1/queue
   * shows it), or a recipient domain, which names the destination its mail
   * goes to now (routed as a message to it would be).
   */
  async resolve(ref: string): Promise<ResolvedDestination> {
    const named = this.deps.book.keyNamed(ref);
    if (named !== undefined) return this.found(named, ref);
    if (domainNameError(ref, true) !== undefined) {
      return { found: false, reason: `no destination is named ${JSON.stringify(ref)}, and it is no domain` };
    }
    const domain = asciiDomain(ref);
    const plan = await this.deps.loop.plan(domain, "recipient-policy");
    if (plan.kind !== "destination") {
      const [result] = plan.results([`postmaster@${domain}`]);
      return { found: false, reason: `mail for ${domain} has no destination now: ${replyText(result!.reply)}` };
    }
    this.deps.book.note(plan, domain);
    return this.found(plan.key, plan.name);
  }

  private found(key: string, name: string): ResolvedDestination {
    const domains = this.deps.book.entry(key)?.domains ?? [];
    const suspension = this.deps.book.suspension(key, this.deps.clock.now());
    return { found: true, key, name, domains: [...new Set([...domains, ...(suspension?.domains ?? [])])] };
  }

  /**
   * Attempt nothing at the destination until about `until`: the work it
   * holds and what is routed to it meanwhile go back to the queue, due when
   * the suspension ends, with no attempt counted. A transaction under way
   * finishes. Kept across a restart. A suspension in force is replaced, and
   * what it held waits for the new end. Returns the end: `until`, or a
   * millisecond or so later, so that no two suspensions end at once and the
   * hold time alone says whose a held recipient is.
   */
  async suspend(destination: Found, until: number): Promise<number> {
    const { key, name, domains } = destination;
    const now = this.deps.clock.now();
    const taken = new Set(this.deps.book.suspended(now).filter(([k]) => k !== key).map(([, s]) => s.until));
    let end = until;
    while (taken.has(end)) end += 1;
    const previous = this.deps.book.suspension(key, now);
    await this.deps.book.suspend(key, { until: end, name, domains });
    if (previous) await this.deps.store.moveHeld(previous.until, end);
    this.deps.loop.hold(this.deps.live.takeQueued(key), end);
    this.operatorChanged(key, { type: "destination_suspended", at: now, until: end, cause: { reason: "operator" } });
    return end;
  }

  /**
   * Lift the operator's suspension and any pause after failures: what the
   * suspension held and every deferred recipient of the destination's
   * domains is due now. Returns how many were made due.
   */
  async resume(destination: Found): Promise<number> {
    const lifted = await this.deps.book.resume(destination.key);
    this.deps.live.resumeAutomation(destination.key);
    this.deps.live.unpause(destination.key);
    const held = lifted ? await this.deps.store.moveHeld(lifted.until, this.deps.clock.now()) : 0;
    const due = held + await this.deps.store.byDomain.dueNowAt(destination.domains);
    if (lifted) {
      const at = this.deps.clock.now();
      this.operatorChanged(destination.key, { type: "destination_resumed", at, cause: { reason: "operator" } });
    }
    this.deps.loop.wake();
    return due;
  }

  /**
   * Try the destination now: every deferred recipient of its domains is due
   * now, and a pause after failures is over. An operator's suspension stays.
   * Returns how many were made due.
   */
  async retry(destination: Found): Promise<number> {
    this.deps.live.unpause(destination.key);
    const due = await this.deps.store.byDomain.dueNowAt(destination.domains);
    this.deps.loop.wake();
    return due;
  }

  /**
   * Bounce every recipient queued for the destination that is not being
   * sent now (a transaction under way finishes): each gets its bounced event
   * and the DSN its NOTIFY asks for. Returns how many.
   */
  async bounce(destination: Found): Promise<number> {
    const r = reply(554, "5.0.0", `bounced by the relay's operator (destination ${destination.name})`);
    const taken = this.deps.live.takeQueued(destination.key);
    for (const work of taken) this.bounceWork(work, r);
    const count = taken.reduce((n, w) => n + w.claims.length, 0);
    return count + await this.bounceInQueue({ domains: destination.domains }, r);
  }

  /**
   * Hold every pending recipient of the destination's domains until released
   * (QueueControl.hold), and take back what the destination had waiting for
   * a connection, so that none of it goes. Returns how many were held.
   */
  async holdDestination(destination: Found): Promise<number> {
    const held = await this.deps.store.control.hold({ domains: destination.domains });
    this.deps.loop.hold(this.deps.live.takeQueued(destination.key), this.deps.clock.now());
    return held;
  }

  /**
   * Bounce a message's recipients in the queue (held ones too), or one of
   * them, as a destination's bounce does; those being sent now finish their
   * attempt. Returns how many.
   */
  bounceRecipients(at: Extract<RecipientSelector, { messageId: string }>): Promise<number> {
    return this.bounceInQueue(at, reply(554, "5.0.0", "bounced by the relay's operator"));
  }

  /** Lease what `at` selects in the queue, batch by batch, and record each as bounced with `r`. */
  private async bounceInQueue(at: RecipientSelector, r: Reply): Promise<number> {
    const { batch } = this.deps;
    let count = 0;
    for (;;) {
      const claims = await this.deps.store.claimForBounce(at, batch, this.deps.leaseMs);
      this.deps.loop.leased(claims);
      count += claims.length;
      const byMessage = new Map<string, Claim[]>();
      for (const claim of claims) byMessage.set(claim.messageId, [...(byMessage.get(claim.messageId) ?? []), claim]);
      for (const [messageId, mine] of byMessage) {
        this.bounceWork({ messageId, mailFrom: mine[0]!.mailFrom, claims: mine }, r);
      }
      if (claims.length < batch) return count;
    }
  }

  /** The work's recipients bounce with the operator's reply `r`, no attempt counted. */
  private bounceWork(work: Work, r: Reply): void {
    const results = work.claims.map((c): RecipientResult => ({
      address: c.address,
      reply: r,
      disposition: "bounced",
      category: "other",
      attempted: false,
    }));
    this.deps.loop.report(work, results, this.deps.retrySchedule);
  }

  /** An operator's suspension or resumption, in the event log as automation's are. */
  private operatorChanged(key: string, change: DestinationChange): void {
    this.deps.changed?.(change, key, this.deps.book.entry(key)?.info.shaping()?.provider);
  }
}
