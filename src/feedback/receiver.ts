/**
 * What the relay does with mail to RELAY_BOUNCE_DOMAIN: it is read, never
 * relayed. A bounce or a complaint counts only when it names one of our
 * messages through a VERP address whose keyed tag verifies (core/verp.ts)
 * and that recipient was sent to; then it becomes a `bounced` or
 * `complained` event for that message and recipient; the store suppresses
 * the address with it as the suppression rules say. Everything else is logged and dropped: a
 * log line rather than an event, because the event log and its webhooks are
 * about our messages, and anyone on the internet may send to this domain.
 */
import type { Logger } from "../core/log.ts";
import { type Reply, replyText } from "../core/reply.ts";
import { parseVerp, type VerpKey } from "../core/verp.ts";
import { classifyReply } from "../delivery/classify.ts";
import type { FeedbackStore } from "../queue/feedback-store.ts";
import { readFeedback } from "./read.ts";
import type { FailedRecipient, Feedback } from "./report.ts";

export interface FeedbackDeps {
  readonly store: Pick<FeedbackStore, "recipientOf" | "record">;
  readonly bounceDomain: string;
  readonly verpKey: VerpKey;
  readonly log: Logger;
  /** An unsubscribe by mail (mailto:unsubscribe+TOKEN@ the bounce domain, RFC 2369 3.2): "unknown" for other addresses. */
  readonly unsubscribeByMail: (rcpt: string) => Promise<"unsubscribed" | "already" | "unknown">;
}

/** One message for the bounce domain, as the SMTP front end hands it over. */
export interface InboundFeedback {
  /** The envelope recipients at the bounce domain. */
  readonly recipients: readonly string[];
  readonly mailFrom: string;
  readonly body: Uint8Array;
  readonly clientIp?: string;
}

type Target = { messageId: string; recipientId: number; address: string };

export class FeedbackReceiver {
  constructor(private readonly deps: FeedbackDeps) {}

  async receive(mail: InboundFeedback): Promise<void> {
    const context = { client_ip: mail.clientIp, mail_from: mail.mailFrom, rcpt_to: mail.recipients.join(",") };
    const unsubscribes = await Promise.all(mail.recipients.map((rcpt) => this.deps.unsubscribeByMail(rcpt)));
    if (unsubscribes.some((result) => result !== "unknown")) return;
    let feedback: Feedback;
    try {
      feedback = await readFeedback(mail.body);
    } catch (error) {
      return this.drop(`its MIME structure could not be read (${String(error)})`, context);
    }
    if (feedback.kind === "autoreply" || feedback.kind === "unrecognized") {
      const why = feedback.kind === "autoreply"
        ? `an automatic reply (${feedback.signal})`
        : "neither a bounce nor a feedback report";
      return this.drop(`${why}`, context);
    }
    const target = await this.target(mail.recipients, feedback.originalReturnPath);
    if (typeof target === "string") return this.drop(target, { ...context, kind: feedback.kind });
    if (feedback.kind === "complaint") return this.complained(target, feedback);
    return this.bounced(target, feedback);
  }

  /** The one recipient of ours the mail is about: the envelope's VERP address, or the returned message's Return-Path. */
  private async target(recipients: readonly string[], returnPath: string | undefined): Promise<Target | string> {
    const { bounceDomain, verpKey, store } = this.deps;
    const parsed = [...recipients, ...(returnPath ? [returnPath] : [])].map((a) => parseVerp(a, bounceDomain, verpKey));
    const verified = parsed.find((p) => p.kind === "verified");
    if (!verified || verified.kind !== "verified") {
      return parsed.some((p) => p.kind === "forged")
        ? "its VERP address does not verify (a tag our key did not make)"
        : "it names no VERP address of ours";
    }
    const row = await store.recipientOf(verified.messageId, verified.recipientId);
    // Only mail that was handed to a server can come back: a recipient never tried was never sent.
    if (!row || (row.attempts === 0 && row.state !== "delivered")) {
      return `it is about message ${verified.messageId} recipient ${verified.recipientId}, which was never sent`;
    }
    return { messageId: verified.messageId, recipientId: verified.recipientId, address: row.address };
  }

  private async bounced(target: Target, feedback: Extract<Feedback, { kind: "bounce" }>): Promise<void> {
    const failed = pick(feedback.recipients, target.address);
    const reply = replyOf(failed);
    const hard = reply.code >= 500;
    const { category } = classifyReply(reply);
    await this.deps.store.record({
      type: "bounced",
      messageId: target.messageId,
      address: target.address,
      data: {
        bounce_type: hard ? "hard" : "soft",
        category,
        reply: replyText(reply),
        status: failed.status,
        action: failed.action,
        final_recipient: failed.address,
        remote_mta: failed.remoteMta,
        format: feedback.format,
        source: "inbound",
      },
    });
    this.deps.log("info", "bounce received", {
      message_id: target.messageId,
      recipient: target.address,
      bounce_type: hard ? "hard" : "soft",
      category,
      format: feedback.format,
    });
  }

  private async complained(target: Target, feedback: Extract<Feedback, { kind: "complaint" }>): Promise<void> {
    await this.deps.store.record({
      type: "complained",
      messageId: target.messageId,
      address: target.address,
      data: {
        feedback_type: feedback.feedbackType,
        user_agent: feedback.userAgent,
        original_rcpt_to: feedback.originalRcptTo,
        reporting_mta: feedback.reportingMta,
        source: "arf",
      },
    });
    this.deps.log("info", "complaint received", {
      message_id: target.messageId,
      recipient: target.address,
      feedback_type: feedback.feedbackType,
    });
  }

  private drop(why: string, fields: Record<string, unknown>): void {
    this.deps.log("info", `mail to the bounce domain dropped: ${why}`, fields);
  }
}

/** The report's entry for our recipient: the one naming its address, else the first (a VERP address is one recipient's). */
function pick(recipients: readonly FailedRecipient[], address: string): FailedRecipient {
  const lower = address.toLowerCase();
  return recipients.find((r) => r.address?.toLowerCase() === lower) ?? recipients[0]!;
}

/**
 * The remote reply as a value for classifyReply: the Diagnostic-Code's
 * "550 5.1.1 text" when it has one; the Status decides hard or soft
 * (RFC 3464 2.3.4), and a delay is soft whatever the code.
 */
function replyOf(failed: FailedRecipient): Reply {
  const diagnostic = failed.diagnostic ?? "";
  const coded = /^([245]\d\d)[ -]+(?:([245]\.\d{1,3}\.\d{1,3})\s*)?(.*)$/s.exec(diagnostic);
  const enhanced = failed.status ?? coded?.[2];
  const klass = failed.action === "delayed" ? "4" : enhanced?.[0] ?? coded?.[1]?.[0] ?? "5";
  const code = coded && coded[1]![0] === klass ? Number(coded[1]) : klass === "4" ? 450 : 550;
  const text = (coded ? coded[3]! : diagnostic).trim();
  return { code, enhanced, lines: [text] };
}
