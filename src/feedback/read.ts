/**
 * Reading what arrives at RELAY_BOUNCE_DOMAIN: a standard report (RFC 6522
 * multipart/report) of delivery status (RFC 3464) or feedback (RFC 5965 ARF),
 * a bounce in one of the common non-standard shapes, an automatic reply, or
 * none of these. Pure: bytes in, a value out.
 */
import PostalMime, { type Email } from "postal-mime";
import { fieldGroups, typedValue } from "./fields.ts";
import type { BounceFormat, FailedRecipient, Feedback } from "./report.ts";
import { autoreplySignal, strongAutoreplySignal } from "./autoreply.ts";
import { textBounce } from "./text-bounce.ts";

export async function readFeedback(raw: Uint8Array): Promise<Feedback> {
  const email = await PostalMime.parse(raw, { forceRfc822Attachments: true, attachmentEncoding: "utf8" });
  const header = (name: string) => email.headers.find((h) => h.key === name)?.value;
  const reportType = /^\s*multipart\/report\b.*\breport-type\s*=\s*"?([A-Za-z0-9-]+)/is.exec(
    header("content-type") ?? "",
  )
    ?.[1]?.toLowerCase();
  const part = (type: string) => email.attachments.find((a) => a.mimeType.toLowerCase() === type);
  const original = part("message/rfc822") ?? part("text/rfc822-headers") ?? part("message/rfc822-headers");
  const originalReturnPath = original && returnPathOf(text(original.content));

  const status = reportType === "delivery-status"
    ? part("message/delivery-status") ?? part("message/global-delivery-status")
    : undefined;
  if (status) {
    const recipients = deliveryStatus(text(status.content));
    // The report's fields win over its wording: one that names no failure (a success DSN) is no bounce.
    if (recipients.length === 0) return { kind: "unrecognized" };
    return { kind: "bounce", format: formatOf(email), recipients, originalReturnPath };
  }
  const feedback = reportType === "feedback-report" ? part("message/feedback-report") : undefined;
  if (feedback) {
    const [fields] = fieldGroups(text(feedback.content));
    const feedbackType = fields?.get("feedback-type")?.toLowerCase();
    if (fields && feedbackType) {
      return {
        kind: "complaint",
        feedbackType,
        userAgent: fields.get("user-agent"),
        originalRcptTo: typedValue(fields.get("original-rcpt-to")),
        originalMailFrom: typedValue(fields.get("original-mail-from")),
        reportingMta: typedValue(fields.get("reporting-mta")),
        originalReturnPath,
      };
    }
  }
  const strong = strongAutoreplySignal(header, email.subject);
  if (strong) return { kind: "autoreply", signal: strong };
  const fromText = textBounce(email.text ?? "", email.subject ?? "", header("x-failed-recipients"));
  if (fromText) {
    return { kind: "bounce", ...fromText, originalReturnPath: originalReturnPath ?? returnPathOf(email.text ?? "") };
  }
  const weak = autoreplySignal(header);
  if (weak) return { kind: "autoreply", signal: weak };
  return { kind: "unrecognized" };
}

/** RFC 3464 2.3: the per-recipient groups after the per-message one; recipients that were delivered are not failures. */
function deliveryStatus(body: string): FailedRecipient[] {
  const [perMessage, ...perRecipient] = fieldGroups(body);
  const remoteOfMessage = typedValue(perMessage?.get("reporting-mta"));
  return perRecipient.flatMap((f): FailedRecipient[] => {
    const action = f.get("action")?.toLowerCase();
    if (action !== "failed" && action !== "delayed") return [];
    return [{
      address: typedValue(f.get("final-recipient")) ?? typedValue(f.get("original-recipient")),
      action,
      status: /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(f.get("status") ?? "")?.[1],
      diagnostic: typedValue(f.get("diagnostic-code")),
      remoteMta: typedValue(f.get("remote-mta")) ?? remoteOfMessage,
    }];
  });
}

/** Who made a standard report, from the shapes their notices have (for the event; the report is read the same). */
function formatOf(email: Email): BounceFormat {
  const subject = email.subject ?? "";
  const text = email.text ?? "";
  const from = email.from?.address ?? "";
  if (/^Undelivered Mail Returned to Sender/i.test(subject) || /This is the mail system at host/i.test(text)) {
    return "postfix";
  }
  if (/^Delivery Status Notification/i.test(subject) && /google|gmail/i.test(`${from} ${text}`)) return "gmail";
  if (/Delivery has failed to these recipients or groups|^Undeliverable:/im.test(`${subject}\n${text}`)) {
    return "microsoft";
  }
  if (/created automatically by mail delivery software/i.test(text)) return "exim";
  if (/yahoo/i.test(from)) return "yahoo";
  return "rfc3464";
}

/** The Return-Path of a returned message (or its header section). */
function returnPathOf(headers: string): string | undefined {
  const value = /^Return-Path:[ \t]*<([^>\r\n]*)>/im.exec(headers)?.[1];
  return value || undefined;
}

const text = (content: ArrayBuffer | Uint8Array | string): string =>
  typeof content === "string" ? content : new TextDecoder().decode(content);
