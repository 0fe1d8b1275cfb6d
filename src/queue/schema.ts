import { sql } from "drizzle-orm";
import { blob, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { lanes } from "../core/lane.ts";
import { tlsTags } from "../core/tls-tag.ts";

/** One accepted message: envelope sender, the raw RFC 5322 bytes, and what the submitter attached. */
export const messages = sqliteTable(
  "messages",
  {
    id: text("id").primaryKey(),
    createdAt: integer("created_at").notNull(),
    /** Envelope sender; "" is the null reverse-path <> (never bounced to). */
    mailFrom: text("mail_from").notNull(),
    /** bounce: a DSN the relay made; report: a TLS report the relay made (RFC 8460). */
    source: text("source", { enum: ["smtp", "http", "bounce", "report"] }).notNull(),
    clientIp: text("client_ip"),
    authUser: text("auth_user"),
    size: integer("size").notNull(),
    /** RFC 3461 RET and ENVID, honoured by the DSN. */
    dsnRet: text("dsn_ret", { enum: ["FULL", "HDRS"] }),
    dsnEnvid: text("dsn_envid"),
    /** RFC 8689 4.1: "requiretls" (REQUIRETLS) or "optional" (TLS-Required: No); null: neither. */
    tlsTag: text("tls_tag", { enum: tlsTags }),
    tags: text("tags", { mode: "json" }).$type<string[]>(),
    metadata: text("metadata", { mode: "json" }).$type<Record<string, unknown>>(),
    /** The bytes of messages stored before the spool existed; empty once they are in the spool (or dropped). */
    body: blob("body", { mode: "buffer" }).notNull(),
    /** Where the body lies in the spool (src/queue/spool.ts), `size` bytes from the offset; null: in `body`, or dropped. */
    spoolSegment: integer("spool_segment"),
    spoolOffset: integer("spool_offset"),
    /**
     * RELAY_BOUNCE_DOMAIN when delivery rewrites the envelope sender to a VERP
     * address there (b.<id>.<recipient>@domain) so SPF aligns with the From
     * domain; null: delivered with mail_from. mail_from stays the submitter's
     * (the relay's own DSNs go to it).
     */
    returnPathDomain: text("return_path_domain"),
  },
  // What each spool segment still holds, for the collector: read from the index alone.
  (t) => [index("messages_spool").on(t.spoolSegment, t.size).where(sql`spool_segment is not null`)],
);

/**
 * suppressed: accepted but never sent, its address on the suppression list at ingress (src/queue/suppressions.ts).
 * held: the operator holds it (src/queue/queue-control.ts): never claimed until released.
 */
export const recipientStates = [
  "queued",
  "deferred",
  "held",
  "delivered",
  "bounced",
  "expired",
  "cancelled",
  "suppressed",
] as const;
export type RecipientState = (typeof recipientStates)[number];

/** The kind of DSN a recipient owes: a failure, a delay warning, or a success ("relayed"). */
export const dsnKinds = ["failure", "delay", "success"] as const;
export type DsnKind = (typeof dsnKinds)[number];

/** One recipient of one message; its state is the unit the delivery loop works on. */
export const recipients = sqliteTable(
  "recipients",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    messageId: text("message_id").notNull().references(() => messages.id, { onDelete: "cascade" }),
    address: text("address").notNull(),
    domain: text("domain").notNull(),
    state: text("state", { enum: recipientStates }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: integer("next_attempt_at").notNull(),
    /**
     * The node working on it. A claim also moves next_attempt_at to the end of
     * the lease, so after a crash or kill -9 the recipient falls due again by itself.
     */
    leaseOwner: text("lease_owner"),
    /**
     * The turn pacing postponed it to (a rate-limited destination hands back
     * what cannot go soon, due at its turn); cleared by the next outcome.
     */
    turnAt: integer("turn_at"),
    lastReply: text("last_reply"),
    /** RFC 3461 NOTIFY (comma list) and ORCPT. */
    dsnNotify: text("dsn_notify"),
    dsnOrcpt: text("dsn_orcpt"),
    /**
     * A DSN this recipient still owes its sender (RFC 3464), set in the same
     * transaction as the state change that calls for it; the DSN sweeper
     * sends one report per message and clears the marks in one transaction.
     */
    dsnPending: text("dsn_pending", { enum: dsnKinds }),
    /** When the one "delayed" DSN was decided for this recipient; never again after that. */
    delayNotifiedAt: integer("delay_notified_at"),
    /** When a greylisting reply first deferred it: only that first deferral gets the quick retry (RELAY_GREYLIST_RETRY). */
    greylistedAt: integer("greylisted_at"),
    /** The remote MTA of the last attempt, for the DSN's Remote-MTA field. */
    lastMta: text("last_mta"),
    updatedAt: integer("updated_at").notNull(),
    /** Its message's priority lane (src/core/lane.ts): the scheduler claims transactional recipients first. */
    lane: text("lane", { enum: lanes }).notNull().default("transactional"),
  },
  (t) => [
    // The scheduler's only query: pending recipients of one lane by due time. Partial, so
    // finished recipients never cost anything to skip; by lane first, so a transactional
    // recipient is found without stepping over a bulk backlog.
    index("recipients_due").on(t.lane, t.nextAttemptAt).where(sql`state in ('queued', 'deferred')`),
    index("recipients_message").on(t.messageId),
    // The DSN sweeper's query: only recipients that owe a report, so it costs nothing when none do.
    index("recipients_dsn_pending").on(t.messageId).where(sql`dsn_pending is not null`),
    // Releasing a node's leases (start, shutdown) touches only leased rows, however deep the queue.
    index("recipients_leased").on(t.leaseOwner).where(sql`lease_owner is not null`),
    // The queue by recipient domain (GET /v1/queue, steering a destination): counts and the oldest
    // message from the index alone, and a retry that touches only that domain's rows. Held recipients
    // are in it too, so that the queue listing (src/queue/queue-listing.ts) pages through every
    // recipient still in the queue in this one order; the scheduler's index leaves them out.
    index("recipients_in_queue").on(t.domain, t.state, t.messageId).where(
      sql`state in ('queued', 'deferred', 'held')`,
    ),
  ],
);

/** A destination's state changed (src/shaping/destination-automation.ts); no message or recipient. */
export const destinationEventTypes = ["destination_throttled", "destination_suspended", "destination_resumed"] as const;
export type DestinationEventType = (typeof destinationEventTypes)[number];

export const eventTypes = [
  "received",
  "rejected",
  "deferred",
  "delivered",
  "bounced",
  "expired",
  "suppressed",
  "complained",
  "unsubscribed",
  "cancelled",
  /**
   * The relay made a DSN (RFC 3464) about this recipient and queued it for the
   * message's sender, as a message of its own (`dsn_message_id`), in the
   * transaction that cleared the recipient's mark.
   */
  "dsn_sent",
  /** The operator held a recipient (it is not delivered until released), or released it. */
  "held",
  "released",
  /** A sending domain's DNS record changed across pass (a recheck found it failing or gone, or passing again); no message or recipient. */
  "domain_changed",
  ...destinationEventTypes,
] as const;
export type EventType = (typeof eventTypes)[number];

/** The durable event log; its id is the resumable cursor of GET /v1/events. */
export const events = sqliteTable(
  "events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    at: integer("at").notNull(),
    type: text("type", { enum: eventTypes }).notNull(),
    messageId: text("message_id"),
    recipient: text("recipient"),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
  },
  // GET /v1/events filters: by message, recipient or type, each read in id order from its index.
  // The recipient and type indexes cost two index entries per event written.
  (t) => [
    index("events_message").on(t.messageId),
    index("events_recipient").on(t.recipient).where(sql`recipient is not null`),
    index("events_type").on(t.type),
  ],
);

/** Small node settings, such as the admin token's hash. */
export const settings = sqliteTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/** SMTP AUTH users (RFC 4954); the password only as a slow scrypt hash. */
export const users = sqliteTable("users", {
  name: text("name").primaryKey(),
  passwordHash: text("password_hash").notNull(),
  /** Sender domains this user may use; empty means any. */
  domains: text("domains", { mode: "json" }).$type<string[]>().notNull(),
  createdAt: integer("created_at").notNull(),
  /** The priority lane of the user's mail when the message itself names none (src/ingress/lane.ts). */
  lane: text("lane", { enum: lanes }).notNull().default("transactional"),
  /** Content scanning of the user's mail: true always, false never, null as RELAY_MILTER_SCOPE says. */
  scan: integer("scan", { mode: "boolean" }),
});

/** HTTP API keys: shown once, stored as a SHA-256 of the secret (it is long and random, so no slow hash is needed). */
export const apiKeys = sqliteTable("api_keys", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  secretHash: text("secret_hash").notNull().unique(),
  scopes: text("scopes", { mode: "json" }).$type<string[]>().notNull(),
  /** Sender domains this key may use; empty means any. */
  domains: text("domains", { mode: "json" }).$type<string[]>().notNull(),
  createdAt: integer("created_at").notNull(),
  revokedAt: integer("revoked_at"),
  /** The priority lane of the key's mail when the request names none (src/ingress/lane.ts). */
  lane: text("lane", { enum: lanes }).notNull().default("transactional"),
  /** Content scanning of the key's mail: true always, false never, null as RELAY_MILTER_SCOPE says. */
  scan: integer("scan", { mode: "boolean" }),
});

/** Answers to requests sent with an Idempotency-Key, replayed for 24 hours. */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    /** Who sent it (API key id, or "admin") and the key they chose. */
    owner: text("owner").notNull(),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    status: integer("status").notNull(),
    response: text("response").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.owner, t.key] }), index("idempotency_created").on(t.createdAt)],
);

/** Sending domains: the relay signs mail whose From is at one of them (DKIM). */
export const sendingDomains = sqliteTable("sending_domains", {
  /** Lower case, IDN as A-labels. */
  domain: text("domain").primaryKey(),
  createdAt: integer("created_at").notNull(),
  /** The last DNS check (`domains check`, a rotation, the periodic check) and when it ran. */
  lastCheck: text("last_check", { mode: "json" }).$type<Record<string, unknown>>(),
  lastCheckedAt: integer("last_checked_at"),
  /**
   * The first time a check found an active DKIM key's record published and
   * matching; never cleared. RELAY_SENDER_POLICY=verified lets SMTP AUTH users
   * and API keys send From this domain only once it is set.
   */
  verifiedAt: integer("verified_at"),
});

export const dkimAlgorithms = ["rsa", "ed25519"] as const;
/**
 * active: signs (at most one per domain and algorithm). pending: made by a
 * rotation or a keygen, waits until its record is visible in DNS, then
 * becomes active. retiring: replaced; no longer signs, but its record must
 * stay published until retire_after (mail in flight, verifiers' caches).
 * retired: the record may be removed.
 */
export const dkimKeyStates = ["active", "pending", "retiring", "retired"] as const;
export type DkimKeyState = (typeof dkimKeyStates)[number];

/** DKIM signing keys per sending domain and selector. The private key never leaves the node's services. */
export const dkimKeys = sqliteTable(
  "dkim_keys",
  {
    id: text("id").primaryKey(),
    domain: text("domain").notNull().references(() => sendingDomains.domain, { onDelete: "cascade" }),
    selector: text("selector").notNull(),
    algorithm: text("algorithm", { enum: dkimAlgorithms }).notNull(),
    /** PKCS#8 PEM. */
    privateKey: text("private_key").notNull(),
    /** The p= value of the TXT record. */
    publicKey: text("public_key").notNull(),
    state: text("state", { enum: dkimKeyStates }).notNull(),
    createdAt: integer("created_at").notNull(),
    activatedAt: integer("activated_at"),
    /** When a retiring key's record may be removed (the grace period's end). */
    retireAfter: integer("retire_after"),
  },
  (t) => [uniqueIndex("dkim_keys_domain_selector").on(t.domain, t.selector)],
);

/**
 * TLS reporting (RFC 8460), sending side: sessions counted per report period
 * and policy domain, as the in-memory tally flushes them. One row per
 * distinct (period, policy, outcome, hosts) with its count; "" stands for an
 * absent value so that the key stays unique. result_type "" counts successful
 * sessions (RFC 8460 4.2), anything else is a result type (RFC 8460 4.3).
 * Rows are deleted when their period's report is made.
 */
export const tlsReportCounts = sqliteTable(
  "tls_report_counts",
  {
    periodStart: integer("period_start").notNull(),
    periodEnd: integer("period_end").notNull(),
    policyDomain: text("policy_domain").notNull(),
    /** "sts" or "no-policy-found" (RFC 8460 4.4). */
    policyType: text("policy_type").notNull(),
    /** The policy's lines as a JSON array, or "". */
    policyString: text("policy_string").notNull(),
    /** The policy's mx patterns as a JSON array, or "". */
    mxHost: text("mx_host").notNull(),
    resultType: text("result_type").notNull(),
    sendingIp: text("sending_ip").notNull(),
    receivingMx: text("receiving_mx").notNull(),
    receivingIp: text("receiving_ip").notNull(),
    reasonCode: text("reason_code").notNull(),
    sessions: integer("sessions").notNull(),
  },
  (t) => [
    primaryKey({
      columns: [
        t.periodStart,
        t.policyDomain,
        t.periodEnd,
        t.policyType,
        t.policyString,
        t.mxHost,
        t.resultType,
        t.sendingIp,
        t.receivingMx,
        t.receivingIp,
        t.reasonCode,
      ],
    }),
    index("tls_report_counts_period_end").on(t.periodEnd),
  ],
);

export const tlsReportStates = ["pending", "sent", "failed"] as const;
export type TlsReportState = (typeof tlsReportStates)[number];

/**
 * Aggregate reports made (RFC 8460 4), one row per report and rua
 * destination: a period's report for a policy domain is made once, and each
 * of its destinations is delivered (and retried, RFC 8460 5.5) on its own.
 */
export const tlsReports = sqliteTable(
  "tls_reports",
  {
    policyDomain: text("policy_domain").notNull(),
    periodStart: integer("period_start").notNull(),
    periodEnd: integer("period_end").notNull(),
    /** A mailto: or https: URI from the domain's TLSRPT record (RFC 8460 3). */
    rua: text("rua").notNull(),
    reportId: text("report_id").notNull(),
    /** The report JSON, gzip-compressed (RFC 8460 5.2). */
    report: blob("report", { mode: "buffer" }).notNull(),
    state: text("state", { enum: tlsReportStates }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: integer("next_attempt_at").notNull(),
    lastError: text("last_error"),
    createdAt: integer("created_at").notNull(),
    sentAt: integer("sent_at"),
  },
  (t) => [
    primaryKey({ columns: [t.policyDomain, t.periodStart, t.rua] }),
    index("tls_reports_due").on(t.nextAttemptAt).where(sql`state = 'pending'`),
  ],
);

/**
 * IP warmup (docs/shaping.md): one row per source IP and receiving provider,
 * the state of src/shaping/warmup-ledger.ts. The ledger keeps it in memory
 * and writes the rows it changed every few seconds and at shutdown; a kill -9
 * loses at most the counts since the last write. Times are ms since the epoch.
 */
export const warmupState = sqliteTable(
  "warmup_state",
  {
    /** Canonical form, or "any" when the relay binds no source IP. */
    sourceIp: text("source_ip").notNull(),
    /** A provider of the shaping rules, or "other" for MX hosts no provider matches. */
    provider: text("provider").notNull(),
    /** Index into the plan's steps; the number of steps (or more) means warm. */
    step: integer("step").notNull(),
    stepSince: integer("step_since").notNull(),
    /** The measurement window the counts below are of. */
    windowStart: integer("window_start").notNull(),
    sent: integer("sent").notNull(),
    delivered: integer("delivered").notNull(),
    deferred: integer("deferred").notNull(),
    blocked: integer("blocked").notNull(),
    complained: integer("complained").notNull(),
    /** What the hourly and daily caps count: messages sent since these. */
    hourStart: integer("hour_start").notNull(),
    hourSent: integer("hour_sent").notNull(),
    dayStart: integer("day_start").notNull(),
    daySent: integer("day_sent").notNull(),
  },
  (t) => [primaryKey({ columns: [t.sourceIp, t.provider] })],
);

export const suppressionScopeKinds = ["global", "principal", "domain"] as const;
export const suppressionReasons = ["hard-bounce", "complaint", "unsubscribe", "manual", "import"] as const;

/**
 * The suppression list (src/queue/suppressions.ts): addresses ingress
 * accepts but never sends to. One row per address and scope: global, one
 * principal (an API key id, "admin", or an SMTP user name), or one sending
 * domain; scope_value is "" for global so that the key stays unique. The
 * primary key starts with the address: all of a message's recipients are
 * looked up in one indexed query, however long the list.
 */
export const suppressions = sqliteTable(
  "suppressions",
  {
    /** Normalised: the whole address lower-cased (src/queue/suppressions.ts says why). */
    address: text("address").notNull(),
    scopeKind: text("scope_kind", { enum: suppressionScopeKinds }).notNull(),
    scopeValue: text("scope_value").notNull(),
    reason: text("reason", { enum: suppressionReasons }).notNull(),
    /** The event that caused it (bounced, complained, unsubscribed) and its message. */
    sourceEvent: text("source_event"),
    sourceMessageId: text("source_message_id"),
    createdAt: integer("created_at").notNull(),
    /** Ms since the epoch; null: never. An expired entry suppresses nothing. */
    expiresAt: integer("expires_at"),
  },
  // Also the order of a listing: its cursor is the last key shown.
  (t) => [primaryKey({ columns: [t.address, t.scopeKind, t.scopeValue] })],
);

/**
 * Webhook endpoints (src/events/webhooks.ts): where the event log is POSTed,
 * signed. In a fleet they live in the shared database, so an endpoint
 * registered through any node is sent every node's events; each node keeps
 * how far the endpoint has got in its own log in `webhookProgress`.
 */
export const webhooks = sqliteTable("webhooks", {
  id: text("id").primaryKey(),
  url: text("url").notNull(),
  /** The event types it wants; ["*"]: every one. */
  eventTypes: text("event_types", { mode: "json" }).$type<string[]>().notNull(),
  description: text("description"),
  /** The Standard Webhooks signing secret (whsec_...), in clear: the relay signs with it. */
  secret: text("secret").notNull(),
  createdAt: integer("created_at").notNull(),
});

/**
 * How far each endpoint has got in this node's event log, always in the
 * node's own database (event ids are the node's). The dispatcher tails the
 * log by `cursor`, so nothing is added to the mail flow's transactions. No
 * foreign key to `webhooks`: in a fleet that table is in another database;
 * the row of an endpoint deleted anywhere is removed when the node sees it
 * gone (src/queue/webhooks.ts).
 */
export const webhookProgress = sqliteTable("webhook_progress", {
  webhookId: text("webhook_id").primaryKey(),
  /** The last event id this endpoint is done with: delivered, not wanted, or dead-lettered. */
  cursor: integer("cursor").notNull(),
  /** The last event id of the batch being retried (kept, so a retry sends the same batch); null: none failing. */
  batchEnd: integer("batch_end"),
  /** Failed attempts of the batch at the head (a live batch or a replay of dead letters). */
  attempts: integer("attempts").notNull().default(0),
  /** When the head batch first failed: its retries end a retry window after this. */
  firstFailureAt: integer("first_failure_at"),
  nextAttemptAt: integer("next_attempt_at"),
  lastError: text("last_error"),
  lastSuccessAt: integer("last_success_at"),
});

/**
 * Events of this node an endpoint did not take within the retry window; kept
 * whole (the log may purge them) until replayed. Gone with the endpoint's progress.
 */
export const webhookDeadLetters = sqliteTable(
  "webhook_dead_letters",
  {
    webhookId: text("webhook_id").notNull().references(() => webhookProgress.webhookId, { onDelete: "cascade" }),
    eventId: integer("event_id").notNull(),
    /** The event as the endpoint is sent it (src/events/event-json.ts). */
    event: text("event", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    deadAt: integer("dead_at").notNull(),
    lastError: text("last_error").notNull(),
    /** Set by a replay: the dispatcher sends it again, before the endpoint's next live events. */
    replayAt: integer("replay_at"),
  },
  (t) => [
    primaryKey({ columns: [t.webhookId, t.eventId] }),
    // The dispatcher's look for replays costs nothing while none is asked for.
    index("webhook_dead_letters_replay").on(t.webhookId).where(sql`replay_at is not null`),
  ],
);
export * from "./fleet-schema.ts";
