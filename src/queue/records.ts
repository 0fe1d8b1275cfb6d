import type { Lane } from "../core/lane.ts";
import type { TlsTag } from "../core/tls-tag.ts";
import type { DsnKind, EventType, RecipientState } from "./schema.ts";

/** The values the queue takes and gives: what is stored, claimed, recorded and reported. */

export interface NewRecipient {
  readonly address: string;
  readonly domain: string;
  readonly notify?: readonly string[];
  readonly orcpt?: string;
  /** On the suppression list: stored as suppressed (never sent), with a `suppressed` event carrying this. */
  readonly suppressed?: Readonly<Record<string, unknown>>;
  /** Quarantined by a content scanner: stored as held (never sent until released), with a `held` event carrying this. */
  readonly held?: Readonly<Record<string, unknown>>;
}

export interface NewMessage {
  readonly mailFrom: string;
  readonly recipients: readonly NewRecipient[];
  readonly body: Uint8Array;
  readonly source: "smtp" | "http" | "bounce" | "report";
  readonly clientIp?: string;
  readonly authUser?: string;
  readonly dsnRet?: "FULL" | "HDRS";
  readonly dsnEnvid?: string;
  /** RFC 8689 4.1: how the message was tagged at receipt. */
  readonly tlsTag?: TlsTag;
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Inbound SPF/DKIM/DMARC/ARC results, recorded in the `received` event. */
  readonly authResults?: Readonly<Record<string, unknown>>;
  /** Scheduled delivery: not attempted before this time. */
  readonly sendAt?: number;
  /** Deliver with a VERP envelope sender at this domain (RELAY_BOUNCE_DOMAIN) instead of mailFrom. */
  readonly returnPathDomain?: string;
  /** The priority lane of every recipient; default transactional (src/core/lane.ts). */
  readonly lane?: Lane;
  /** What each content scanner said of it (src/ingress/content-scan.ts), for its `received` events. */
  readonly scan?: readonly unknown[];
  /** RELAY_DURABILITY=replicated: the node that accepted it and stopped, when this one adopted it. */
  readonly adoptedFrom?: string;
}

/** A recipient the delivery loop has leased, with what it needs from its message. */
export interface Claim {
  readonly recipientId: number;
  readonly messageId: string;
  readonly address: string;
  readonly domain: string;
  /** Its priority lane: transactional recipients are claimed first. */
  readonly lane: Lane;
  readonly attempts: number;
  readonly dsnNotify?: string;
  readonly dsnOrcpt?: string;
  /** Set once the recipient's one "delayed" DSN has been decided. */
  readonly delayNotifiedAt?: number;
  /** Set once a greylisting reply deferred it. */
  readonly greylistedAt?: number;
  readonly mailFrom: string;
  /** Set when delivery sends with a VERP envelope sender at this domain (one transaction per recipient). */
  readonly returnPathDomain?: string;
  readonly messageCreatedAt: number;
  /** RFC 8689 4.1: the message's tag; it decides the TLS rule delivery follows. */
  readonly tlsTag?: TlsTag;
  /** The submitter's tags and metadata, echoed in every event about the message. */
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Set when pacing postponed it to this turn: it is back in its turn, not new work. */
  readonly turnAt?: number;
}

/** Work that pacing hands back: no attempt, no event; due again at `at` (its turn). */
export interface Postponement {
  readonly recipientId: number;
  readonly at: number;
}

export type FinalState = Extract<RecipientState, "delivered" | "bounced" | "expired">;

/** What one attempt did to one recipient; written with its event in one transaction. */
export interface Outcome {
  readonly recipientId: number;
  readonly messageId: string;
  readonly address: string;
  readonly state: FinalState | "deferred";
  readonly reply: string;
  /** For deferred: when to try again. */
  readonly nextAttemptAt?: number;
  /** False when nothing was tried (a suspended destination): the attempt count stays. */
  readonly counted?: boolean;
  /** A greylisting reply deferred it: kept on the recipient from the first time on. */
  readonly greylisted?: boolean;
  readonly event: Readonly<Record<string, unknown>>;
  /** The remote MTA of this attempt, kept for a later DSN's Remote-MTA. */
  readonly remoteMta?: string;
  /**
   * A DSN this outcome calls for, marked on the recipient in the same
   * transaction (the DSN sweeper sends it). On a final state without one, a
   * delay warning not yet sent is dropped: it would be stale.
   */
  readonly dsn?: DsnKind;
  /** Events that follow the state change's own, such as a complaint after a delivery. */
  readonly followingEvents?: readonly { readonly type: EventType; readonly data: Readonly<Record<string, unknown>> }[];
}

/** A recipient that owes its sender a DSN, with what the report needs. */
export interface PendingDsnRecipient {
  readonly recipientId: number;
  readonly address: string;
  readonly kind: DsnKind;
  readonly state: RecipientState;
  readonly lastReply?: string;
  readonly lastMta?: string;
  readonly dsnOrcpt?: string;
  readonly updatedAt: number;
}

/** A message whose pending DSN marks can be reported now: none of its recipients is in flight. */
export interface PendingDsn {
  readonly messageId: string;
  readonly mailFrom: string;
  readonly createdAt: number;
  readonly body: Uint8Array;
  readonly dsnRet: "FULL" | "HDRS" | null;
  readonly dsnEnvid: string | null;
  /** RFC 8689 5, 6: the report about a tagged message is tagged too, and about REQUIRETLS mail returns headers only. */
  readonly tlsTag: TlsTag | null;
  readonly recipients: readonly PendingDsnRecipient[];
}

/** What the sweeper did with one PendingDsn: the DSN to enqueue (if any) and the marks it answers. */
export interface SettledDsn {
  /** The message reported on. */
  readonly messageId: string;
  readonly dsn?: NewMessage;
  readonly recipients: readonly { readonly recipientId: number; readonly address: string; readonly kind: DsnKind }[];
}

/** A queued message as delivery reads it. */
export interface StoredMessage {
  readonly id: string;
  readonly mailFrom: string;
  readonly body: Uint8Array;
  readonly dsnRet: "FULL" | "HDRS" | null;
  readonly dsnEnvid: string | null;
}

/** A recipient domain's pending recipients (GET /v1/queue). */
export interface DomainBacklog {
  readonly domain: string;
  /** Not tried yet (in flight included), at most the count asked for. */
  readonly queued: number;
  /** Tried and waiting for the next attempt (in flight included), at most the count asked for. */
  readonly deferred: number;
  /** Held by the operator, at most the count asked for. */
  readonly held: number;
  /** The oldest message with a recipient in the queue there (ids sort by time). */
  readonly oldestMessageId: string;
}

/** One recipient domain's recipients in the queue, held ones too, by state (QueueByDomain.inQueueCounts). */
export interface InQueueCount {
  readonly domain: string;
  readonly queued: number;
  readonly deferred: number;
  readonly held: number;
}
