import { fromDomain } from "../auth/from-domain.ts";
import type { Clock } from "../core/clock.ts";
import type { Lane } from "../core/lane.ts";
import type { Logger } from "../core/log.ts";
import { newId } from "../core/id.ts";
import { domainOf } from "../core/address.ts";
import { returnPathDomainFor } from "./return-path.ts";
import type { NewMessage } from "../queue/records.ts";
import type { QueueStore } from "../queue/store.ts";
import { formatScope, type Suppression, type SuppressionStore } from "../queue/suppressions.ts";
import { hasHeader, prependFields } from "../core/header-section.ts";
import { type SenderPolicy, SenderRefused, type Submitter } from "./sender-policy.ts";
import { headerLane, laneOf } from "./lane.ts";
import { tlsTagOf } from "./tls-tag.ts";
import type { ContentScanner, MilterReport } from "./content-scan.ts";
import { type Reply, replyText } from "../core/reply.ts";
import type { RejectionLog } from "../queue/rejection-log.ts";
import type { FreeSpace } from "../queue/free-space.ts";
import { isStorageFull } from "../queue/storage-full.ts";

export interface SubmittedRecipient {
  readonly address: string;
  readonly notify?: readonly string[];
  readonly orcpt?: string;
}

export interface Submission {
  /** "" for the null reverse-path. */
  readonly mailFrom: string;
  readonly recipients: readonly SubmittedRecipient[];
  readonly body: Uint8Array;
  /** "report": made by the relay itself (a TLS report, RFC 8460). */
  readonly source: "smtp" | "http" | "report";
  /** Who handed it in: the sender policy and the return path depend on it. */
  readonly submitter: Submitter;
  readonly clientIp?: string;
  readonly clientHelo?: string;
  readonly authUser?: string;
  readonly tls?: boolean;
  readonly dsnRet?: "FULL" | "HDRS";
  readonly dsnEnvid?: string;
  /** REQUIRETLS on MAIL FROM (RFC 8689 2) or `require_tls` in the HTTP API. */
  readonly requireTls?: boolean;
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly sendAt?: number;
  /** Inbound SPF/DKIM/DMARC/ARC results (mail from outside), recorded in the `received` event. */
  readonly authResults?: Readonly<Record<string, unknown>>;
  /** Sender domains the submitter may use (its grant); empty or absent = any. The DKIM signer signs only these. */
  readonly senderDomains?: readonly string[];
  /** The priority lane asked for with this message (the HTTP `priority` field); it wins over every other source. */
  readonly lane?: Lane;
  /** The submitter's own setting (its SMTP user's or API key's priority), for a message that names none. */
  readonly submitterLane?: Lane;
  /** The submitter's content scanning setting: true always, false never, undefined as RELAY_MILTER_SCOPE says. */
  readonly scan?: boolean;
}

/** What Ingress.submit stored: the message's id, and the recipients it accepted but will not send (suppressed). */
export interface Accepted {
  readonly id: string;
  /** By address as submitted: the suppression-list entry that stopped it. */
  readonly suppressed: ReadonlyMap<string, Suppression>;
  /** A content scanner quarantined it: stored held, sent only once released. */
  readonly held?: boolean;
}

/** A content scanner refused the message (nothing stored): the reply says why, 4xx or 5xx. */
export class ContentRefused extends Error {
  constructor(readonly id: string, readonly reply: Reply) {
    super(reply.lines.join(" "));
    this.name = "ContentRefused";
  }

  get temporary(): boolean {
    return this.reply.code < 500;
  }
}

/**
 * The data directory's file system is too full to take the message (known
 * before, or a write just failed for lack of space): nothing was stored.
 * SMTP answers 452 4.3.1, HTTP 507; the client tries again later.
 */
export class InsufficientStorage extends Error {
  constructor(options?: { cause: unknown }) {
    super("insufficient system storage: the data directory's file system is full", options);
    this.name = "InsufficientStorage";
  }
}

export interface IngressDeps {
  readonly store: QueueStore;
  readonly clock: Clock;
  readonly hostname: string;
  /** Told after every durable enqueue, so the delivery loop can wake without polling. */
  readonly onEnqueued: () => void;
  /** DKIM signing, applied after the trace headers are added; returns the message to store. */
  readonly sign?: (message: Uint8Array, submission: Submission) => Promise<Uint8Array>;
  /** RELAY_SENDER_POLICY; without it every From domain is accepted. */
  readonly senderPolicy?: SenderPolicy;
  /** RELAY_BOUNCE_DOMAIN: our own submitters' mail whose From aligns with it is delivered with a VERP return path there. */
  readonly bounceDomain?: string;
  /** RELAY_PRIORITY_HEADER: the header field whose value (transactional or bulk) names a message's lane. */
  readonly priorityHeader?: string;
  /** Where a priority header with an unknown value is reported. */
  readonly log?: Logger;
  /** The suppression list: a recipient on it is stored as suppressed, never sent. */
  readonly suppressions?: SuppressionStore;
  /** RELAY_MILTERS: the content scanners every message in their scope goes through before it is signed. */
  readonly scanner?: ContentScanner;
  /** Where a message a scanner refused or discarded is recorded (`rejected` events). */
  readonly rejections?: RejectionLog;
  /** The data directory's free space against RELAY_MIN_FREE_BYTES; absent: never refused for lack of it. */
  readonly freeSpace?: Pick<FreeSpace, "hasRoom" | "ranOut" | "used">;
}

/** The one way into the queue, shared by the SMTP and HTTP front ends. */
export class Ingress {
  constructor(private readonly deps: IngressDeps) {}

  /**
   * Whether a message of `bytes` (0: any message) would be taken as far as
   * the disk goes: the front ends ask before the client sends it.
   */
  hasRoom(bytes = 0): boolean {
    return this.deps.freeSpace?.hasRoom(bytes) ?? true;
  }

  /**
   * Stores the message durably and returns its id and the recipients the
   * suppression list stopped (stored as suppressed, with the event saying
   * why); throws SenderRefused (nothing stored) when the sender policy says
   * no, ContentRefused when a content scanner does, and InsufficientStorage
   * when the disk is full.
   */
  async submit(submission: Submission): Promise<Accepted> {
    if (!this.hasRoom()) throw new InsufficientStorage();
    let s = submission;
    let parsed: { domain: string | undefined } | undefined;
    const from = () => (parsed ??= { domain: fromDomain(s.body) }).domain;
    if (this.deps.senderPolicy) {
      const decision = await this.deps.senderPolicy.decide({
        submitter: s.submitter,
        grant: s.senderDomains,
        fromDomain: from,
      });
      if (!decision.allowed) throw new SenderRefused(decision);
    }
    const id = newId(this.deps.clock.now());
    let traced = prependFields(s.body, this.addedHeaders(s));
    let scan: { report: readonly MilterReport[]; quarantine?: { milter: string; reason: string } } | undefined;
    if (this.deps.scanner?.applies(s)) {
      const result = await this.deps.scanner.scan({
        ...s,
        id,
        recipients: s.recipients.map((r) => r.address),
        content: traced,
      });
      if (result.kind !== "pass") {
        await this.recordRejection(id, s, result);
        if (result.kind === "refuse") throw new ContentRefused(id, result.reply);
        return { id, suppressed: new Map() };
      }
      s = { ...s, mailFrom: result.mailFrom, recipients: scannedRecipients(s.recipients, result.recipients) };
      traced = result.content;
      scan = result;
    }
    // Mail from outside (to the bounce domain) is somebody else's: its envelope sender is never ours to rewrite.
    const returnPathDomain = this.deps.bounceDomain === undefined || s.submitter === "outside"
      ? undefined
      : returnPathDomainFor({ fromDomain: from(), mailFrom: s.mailFrom, bounceDomain: this.deps.bounceDomain });
    const header = s.lane === undefined && this.deps.priorityHeader !== undefined
      ? headerLane(traced, this.deps.priorityHeader)
      : undefined;
    const unique = uniqueRecipients(s.recipients);
    // Mail to the bounce domain is feedback for the relay itself, not mail it sends on.
    const suppressed = this.deps.suppressions && s.submitter !== "outside"
      ? await this.deps.suppressions.lookup(unique.map((r) => r.address), {
        principal: s.authUser,
        domain: from() ?? (s.mailFrom === "" ? undefined : domainOf(s.mailFrom)),
      })
      : new Map<string, Suppression>();
    const body = this.deps.sign ? await this.deps.sign(traced, s) : traced;
    const message: NewMessage = {
      mailFrom: s.mailFrom,
      recipients: unique.map((r) => {
        const entry = suppressed.get(r.address);
        return {
          ...r,
          domain: domainOf(r.address),
          ...(entry ? { suppressed: suppressedEvent(entry) } : {}),
          ...(scan?.quarantine
            ? { held: { reason: "quarantine", milter: scan.quarantine.milter, quarantine: scan.quarantine.reason } }
            : {}),
        };
      }),
      body,
      source: s.source,
      clientIp: s.clientIp,
      authUser: s.authUser,
      dsnRet: s.dsnRet,
      dsnEnvid: s.dsnEnvid,
      tlsTag: tlsTagOf(s.requireTls === true, s.body),
      tags: s.tags,
      metadata: s.metadata,
      sendAt: s.sendAt,
      authResults: s.authResults,
      returnPathDomain,
      lane: laneOf(s.lane, header, s.submitterLane),
      ...(scan ? { scan: scan.report } : {}),
    };
    const size = body.byteLength; // read first: the queue takes the bytes to its thread (they read 0 after)
    try {
      await this.deps.store.enqueue(message, id);
    } catch (error) {
      if (!isStorageFull(error)) throw error;
      this.deps.freeSpace?.ranOut(error);
      throw new InsufficientStorage({ cause: error });
    }
    this.deps.freeSpace?.used(size);
    this.deps.onEnqueued();
    if (header && "unknown" in header) {
      this.deps.log?.("warn", "priority header ignored: its value is neither transactional nor bulk", {
        message_id: id,
        header: this.deps.priorityHeader,
        value: header.unknown,
        lane: message.lane,
      });
    }
    return { id, suppressed, ...(scan?.quarantine ? { held: true } : {}) };
  }

  /** `rejected` events for a message a scanner refused or discarded, then a log line: nothing else of it is kept. */
  private async recordRejection(
    id: string,
    s: Submission,
    result: { kind: "refuse"; reply: Reply; milter: string; report: readonly MilterReport[] } | {
      kind: "discard";
      milter: string;
      report: readonly MilterReport[];
    },
  ): Promise<void> {
    const data = {
      mail_from: s.mailFrom,
      source: s.source,
      client_ip: s.clientIp,
      auth_user: s.authUser,
      size: s.body.byteLength,
      tags: s.tags,
      metadata: s.metadata,
      action: result.kind === "discard" ? "discarded" : result.reply.code < 500 ? "tempfailed" : "refused",
      reply: result.kind === "refuse" ? replyText(result.reply) : undefined,
      milter: result.milter,
      scan: result.report,
    };
    await this.deps.rejections?.record(id, uniqueRecipients(s.recipients).map((r) => r.address), data);
  }

  /**
   * A Received trace field (RFC 5321 4.4) and, as a submission service may
   * (RFC 6409 8.2, 8.3), the Date and Message-ID a client left out.
   */
  private addedHeaders(s: Submission): string[] {
    const { hostname, clock } = this.deps;
    const date = new Date(clock.now()).toUTCString().replace("GMT", "+0000");
    const lines: string[] = [];
    const from = s.clientIp
      ? `from ${s.clientHelo ?? "unknown"} ([${s.clientIp}])`
      : s.source === "report"
      ? "from localhost"
      : "from api";
    const protocol = s.source === "http"
      ? "HTTP"
      : s.source === "report"
      ? "local"
      : `ESMTP${s.tls ? "S" : ""}${s.authUser ? "A" : ""}`;
    lines.push(`Received: ${from}\r\n\tby ${hostname} (relay) with ${protocol};\r\n\t${date}`);
    if (!hasHeader(s.body, "Date")) lines.push(`Date: ${date}`);
    if (!hasHeader(s.body, "Message-ID")) lines.push(`Message-ID: <${newId(clock.now())}@${hostname}>`);
    return lines;
  }
}

/** The recipients a scanner left, those it kept with what was submitted for them (NOTIFY, ORCPT). */
function scannedRecipients(
  submitted: readonly SubmittedRecipient[],
  scanned: readonly string[],
): SubmittedRecipient[] {
  return scanned.map((address) => submitted.find((r) => r.address === address) ?? { address });
}

/** A recipient named twice is delivered once (domains compare case-insensitively, RFC 5321 2.4). */
function uniqueRecipients(recipients: readonly SubmittedRecipient[]): SubmittedRecipient[] {
  const seen = new Set<string>();
  return recipients.filter((r) => {
    const at = r.address.lastIndexOf("@");
    const key = `${r.address.slice(0, at)}@${r.address.slice(at + 1).toLowerCase()}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** What the `suppressed` event says of the entry that stopped a recipient. */
function suppressedEvent(entry: Suppression): Record<string, unknown> {
  return {
    reason: entry.reason,
    scope: formatScope(entry.scope),
    suppressed_address: entry.address,
    source_event: entry.source?.event,
    source_message_id: entry.source?.messageId,
    suppressed_at: new Date(entry.createdAt).toISOString(),
    expires_at: entry.expiresAt === undefined ? undefined : new Date(entry.expiresAt).toISOString(),
  };
}
