/**
 * RELAY_MILTERS: each message goes through the content scanners in order,
 * before it is signed and stored, so that a header a scanner adds is
 * covered by our DKIM signature rather than breaking it. Each scanner sees
 * the message as the ones before it left it. What a verdict means, and what
 * a scanner that fails counts as (its `default`), is decided here; the
 * protocol is src/milter/'s.
 *
 * - accept / continue: on to the next scanner, with its modifications applied;
 * - reject, tempfail, a reply code: the message is refused (5xx or 4xx);
 * - discard: accepted and dropped (a `rejected` event says so);
 * - quarantine: stored held, until the operator releases it.
 *
 * A recipient a scanner refuses at RCPT is dropped; the others go on.
 */
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { MilterDefault, MilterSetting, ScanScope } from "../core/milter-setting.ts";
import { type Reply, reply } from "../core/reply.ts";
import {
  applyModifications,
  commonMacros,
  Family,
  MilterError,
  type MilterFinalVerdict,
  MilterPool,
  type MilterSession,
  openMilter,
  type ReplyText,
} from "../milter/index.ts";
import type { Submitter } from "./sender-policy.ts";

export interface ContentScannerDeps {
  readonly milters: readonly MilterSetting[];
  /** RELAY_MILTER_SCOPE: whose mail is scanned. */
  readonly scope: readonly ScanScope[];
  readonly hostname: string;
  /** The most bytes a scanner's modifications may add (RELAY_MAX_MESSAGE_BYTES). */
  readonly maxMessageBytes: number;
  readonly clock: Clock;
  readonly log: Logger;
}

/** The message as scanning saw it: who sent it, from where, to whom. */
export interface ScanInput {
  readonly id: string;
  readonly submitter: Submitter;
  /** A per-user or per-key choice: true scans whatever the scope, false never; undefined follows the scope. */
  readonly scan?: boolean;
  readonly source: "smtp" | "http" | "report";
  readonly clientIp?: string;
  readonly clientHelo?: string;
  readonly authUser?: string;
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly content: Uint8Array;
}

/** One scanner's part, as the `received` or `rejected` event records it. */
export interface MilterReport {
  readonly milter: string;
  readonly verdict: MilterFinalVerdict["kind"] | "default";
  /** The step that gave the verdict. */
  readonly step?: string;
  readonly reply?: string;
  readonly quarantine?: string;
  /** The kinds of modification applied, in order. */
  readonly modifications?: readonly string[];
  readonly refused_recipients?: readonly string[];
  /** Why the scanner's default applied: it was down, too slow, or broke the protocol. */
  readonly failure?: string;
  /** The default that applied. */
  readonly default?: MilterDefault;
}

export type ScanResult =
  | {
    readonly kind: "pass";
    readonly mailFrom: string;
    readonly recipients: readonly string[];
    readonly content: Uint8Array;
    /** Set when a scanner asked to hold the message. */
    readonly quarantine?: { readonly milter: string; readonly reason: string };
    readonly report: readonly MilterReport[];
  }
  | {
    readonly kind: "refuse";
    readonly reply: Reply;
    readonly milter: string;
    readonly report: readonly MilterReport[];
  }
  | { readonly kind: "discard"; readonly milter: string; readonly report: readonly MilterReport[] };

const SCOPE_OF: Readonly<Record<Submitter, ScanScope | undefined>> = {
  "smtp-user": "users",
  "api-key": "keys",
  admin: "keys",
  "relay-network": "networks",
  outside: "outside",
  relay: undefined,
};

/** How long an unused milter connection is kept, and how many at most per milter. */
const POOL = { idleMs: 30_000, maxIdle: 32 };

export class ContentScanner {
  readonly #pools = new Map<string, MilterPool>();

  constructor(private readonly deps: ContentScannerDeps) {
    for (const milter of deps.milters) this.#pools.set(milter.name, new MilterPool(POOL));
  }

  /** Whether this message is scanned at all. */
  applies(input: Pick<ScanInput, "submitter" | "scan" | "source">): boolean {
    if (this.deps.milters.length === 0 || input.source === "report") return false;
    if (input.scan !== undefined) return input.scan;
    const scope = SCOPE_OF[input.submitter];
    return scope !== undefined && this.deps.scope.includes(scope);
  }

  async scan(input: ScanInput): Promise<ScanResult> {
    let message = { sender: input.mailFrom, recipients: input.recipients, content: input.content };
    let quarantine: { milter: string; reason: string } | undefined;
    const report: MilterReport[] = [];
    for (const milter of this.deps.milters) {
      const step = await this.#one(milter, input, message);
      report.push(step.report);
      if (step.kind === "refuse") return { kind: "refuse", reply: step.reply, milter: milter.name, report };
      if (step.kind === "discard") return { kind: "discard", milter: milter.name, report };
      message = step.message;
      if (step.quarantine !== undefined) quarantine ??= { milter: milter.name, reason: step.quarantine };
      if (message.recipients.length === 0) return { kind: "discard", milter: milter.name, report };
    }
    return {
      kind: "pass",
      mailFrom: message.sender,
      recipients: message.recipients,
      content: message.content,
      ...(quarantine ? { quarantine } : {}),
      report,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.close()));
  }

  async #one(
    milter: MilterSetting,
    input: ScanInput,
    message: { sender: string; recipients: readonly string[]; content: Uint8Array },
  ): Promise<
    | { kind: "pass"; message: typeof message; quarantine?: string; report: MilterReport }
    | { kind: "refuse"; reply: Reply; report: MilterReport }
    | { kind: "discard"; report: MilterReport }
  > {
    const pool = this.#pools.get(milter.name)!;
    const key = `${input.clientIp ?? ""} ${input.clientHelo ?? ""} ${input.source}`;
    // A kept connection the milter closed meanwhile fails at once: the message is tried again on a new one.
    for (let attempt = 0;; attempt++) {
      const kept = attempt === 0 ? pool.take(key) : undefined;
      let session: MilterSession | undefined = kept;
      try {
        session ??= await this.#open(milter, input);
        const result = await session.message({
          sender: { address: message.sender },
          recipients: message.recipients.map((address) => ({ address })),
          content: message.content,
          macros: commonMacros({
            hostname: this.deps.hostname,
            daemonName: input.source,
            clientAddress: input.clientIp,
            authenticatedAs: input.authUser,
            queueId: input.id,
          }),
        });
        pool.give(key, session);
        return this.#verdict(milter, result, message);
      } catch (error) {
        if (session) void session.close();
        if (!(error instanceof MilterError)) throw error;
        if (kept && attempt === 0) continue;
        return this.#failed(milter, error, message);
      }
    }
  }

  /** A new connection, its CONNECT and HELO sent: those are the client's, once per connection. */
  async #open(milter: MilterSetting, input: ScanInput): Promise<MilterSession> {
    const session = await openMilter(milter.endpoint, {
      connectTimeoutMs: milter.connectTimeoutMs,
      timeouts: { commandMs: milter.commandTimeoutMs, messageMs: milter.messageTimeoutMs },
      maxEditBytes: this.deps.maxMessageBytes,
    });
    try {
      const ip = input.clientIp;
      await session.connect(
        ip === undefined
          ? { hostname: "localhost", family: Family.UNKNOWN }
          : { hostname: `[${ip}]`, family: ip.includes(":") ? Family.INET6 : Family.INET, address: ip },
        commonMacros({ hostname: this.deps.hostname, daemonName: input.source, clientAddress: ip }).connect,
      );
      await session.helo(input.clientHelo ?? (ip === undefined ? "localhost" : `[${ip}]`));
      return session;
    } catch (error) {
      void session.close();
      throw error;
    }
  }

  #verdict(
    milter: MilterSetting,
    result: Awaited<ReturnType<MilterSession["message"]>>,
    message: { sender: string; recipients: readonly string[]; content: Uint8Array },
  ) {
    const { verdict } = result;
    const refused = result.refusedRecipients.map((r) => r.address);
    const report: MilterReport = {
      milter: milter.name,
      verdict: verdict.kind,
      step: result.step,
      ...(verdict.kind === "replycode" ? { reply: verdict.reply.text } : {}),
      ...(result.quarantine !== undefined ? { quarantine: result.quarantine } : {}),
      ...(result.modifications.length > 0 ? { modifications: result.modifications.map((m) => m.kind) } : {}),
      ...(refused.length > 0 ? { refused_recipients: refused } : {}),
    };
    switch (verdict.kind) {
      case "reject":
        return { kind: "refuse" as const, reply: reply(550, "5.7.1", "message refused by a content scanner"), report };
      case "tempfail":
        return {
          kind: "refuse" as const,
          reply: reply(451, "4.7.1", "a content scanner asks to try again later"),
          report,
        };
      case "replycode":
        return { kind: "refuse" as const, reply: smtpReply(verdict.reply), report };
      case "discard":
        return { kind: "discard" as const, report };
      default: {
        // accept: the milter's part is done, its modifications apply.
        const kept = message.recipients.filter((address) => !refused.includes(address));
        const changed = applyModifications({ ...message, recipients: kept }, result.modifications);
        return {
          kind: "pass" as const,
          message: changed,
          ...(result.quarantine !== undefined ? { quarantine: result.quarantine } : {}),
          report,
        };
      }
    }
  }

  #failed(
    milter: MilterSetting,
    error: MilterError,
    message: { sender: string; recipients: readonly string[]; content: Uint8Array },
  ) {
    const report: MilterReport = {
      milter: milter.name,
      verdict: "default",
      default: milter.default,
      failure: error.message,
    };
    this.deps.log("warn", "content scanner failed: its default action applies", {
      milter: milter.name,
      default: milter.default,
      error: error.message,
    });
    switch (milter.default) {
      case "accept":
        return { kind: "pass" as const, message, report };
      case "reject":
        return { kind: "refuse" as const, reply: reply(550, "5.7.1", "content scanner unavailable"), report };
      case "tempfail":
        return {
          kind: "refuse" as const,
          reply: reply(451, "4.7.1", "content scanner unavailable, try again later"),
          report,
        };
    }
  }
}

/** A milter's chosen reply as ours: its code, its enhanced code when it gave one, its lines. */
function smtpReply(text: ReplyText): Reply {
  const lines = text.text.split("\r\n").map((line) => line.slice(4));
  const enhanced = /^([45]\.\d{1,3}\.\d{1,3})(?: |$)/.exec(lines[0] ?? "")?.[1];
  const bare = enhanced === undefined ? lines : lines.map((line) => line.replace(/^[45]\.\d{1,3}\.\d{1,3} ?/, ""));
  return reply(text.code, enhanced, ...bare);
}
