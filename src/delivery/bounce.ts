import { type Reply, replyText } from "../core/reply.ts";
import type { TlsTag } from "../core/tls-tag.ts";
import { domainOf } from "../core/address.ts";
import type { NewMessage } from "../queue/records.ts";
import type { DsnKind } from "../queue/schema.ts";
import { buildDsn, type DsnRecipient } from "./dsn.ts";

export interface FailedRecipient {
  readonly address: string;
  readonly reply: Reply;
  readonly expired: boolean;
  readonly notify?: string;
  readonly orcpt?: string;
  readonly remoteMta?: string;
}

/** One recipient in a DSN: what it owes (failure, delay warning, success) and what the last attempt said. */
export interface ReportedRecipient {
  readonly address: string;
  readonly kind: DsnKind;
  readonly reply: Reply;
  /** A failure because the recipient outlived RELAY_MAX_QUEUE_TIME (5.4.7). */
  readonly expired?: boolean;
  readonly orcpt?: string;
  readonly remoteMta?: string;
  readonly lastAttemptAt?: number;
  /** For a delay warning: when the relay gives up (arrival + RELAY_MAX_QUEUE_TIME). */
  readonly willRetryUntil?: number;
}

export interface BouncedMessage {
  readonly mailFrom: string;
  readonly createdAt: number;
  readonly body: Uint8Array;
  readonly dsnRet: "FULL" | "HDRS" | null;
  readonly dsnEnvid: string | null;
  readonly tlsTag?: TlsTag | null;
}

/** RFC 3461 4.1 NOTIFY as a set; undefined when the client gave none. */
function notifySet(notify: string | undefined): Set<string> | undefined {
  if (notify === undefined || notify.trim() === "") return undefined;
  return new Set(notify.toUpperCase().split(",").map((n) => n.trim()));
}

/** RFC 3461 4.1: without NOTIFY the MTA reports failures; NEVER means no DSN at all. */
export function wantsFailureReport(notify: string | undefined): boolean {
  return notifySet(notify)?.has("FAILURE") ?? true;
}

/**
 * Delay warnings: when DELAY is asked for, and also when NOTIFY is absent.
 * RFC 3461 4.1 leaves the absent case to the MTA; sendmail (Timeout.queuewarn)
 * and Exim (delay_warning) warn by default, as Postfix does once
 * delay_warning_time is set, so a sender who said nothing gets the warning
 * senders are used to. NOTIFY without DELAY (e.g. FAILURE alone) or NEVER gets none.
 */
export function wantsDelayReport(notify: string | undefined): boolean {
  return notifySet(notify)?.has("DELAY") ?? true;
}

/** Success reports only when SUCCESS was asked for explicitly (RFC 3461 4.1). */
export function wantsSuccessReport(notify: string | undefined): boolean {
  return notifySet(notify)?.has("SUCCESS") ?? false;
}

const STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;

function failureStatus(r: { readonly reply: Reply; readonly expired?: boolean }): string {
  if (r.expired) return "5.4.7";
  // A remote server's enhanced code is used only when it is well formed (RFC 3463 2).
  if (r.reply.enhanced && STATUS.test(r.reply.enhanced)) return r.reply.enhanced;
  return r.reply.code >= 500 ? "5.0.0" : "4.0.0";
}

function delayStatus(r: ReportedRecipient): string {
  return r.reply.enhanced?.startsWith("4") && STATUS.test(r.reply.enhanced) ? r.reply.enhanced : "4.0.0";
}

function successStatus(r: ReportedRecipient): string {
  return r.reply.enhanced?.startsWith("2") && STATUS.test(r.reply.enhanced) ? r.reply.enhanced : "2.0.0";
}

function dsnRecipient(r: ReportedRecipient, now: number): DsnRecipient {
  const common = {
    address: r.address,
    originalRecipient: r.orcpt,
    diagnostic: replyText(r.reply),
    remoteMta: r.remoteMta,
    lastAttemptAt: r.lastAttemptAt ?? now,
  };
  switch (r.kind) {
    case "failure":
      return { ...common, action: "failed", status: failureStatus(r) };
    case "delay":
      return { ...common, action: "delayed", status: delayStatus(r), willRetryUntil: r.willRetryUntil };
    case "success":
      // RFC 3464 2.3.3: the next hop does not do DSN, so this is as far as we can tell.
      return { ...common, action: "relayed", status: successStatus(r) };
  }
}

/**
 * The one DSN for a message's reported recipients (failures, delay warnings,
 * successes in one multipart/report), to go back to its sender; none for the
 * null sender (RFC 5321 4.5.5: never bounce a bounce) or with nobody to report.
 * The original comes back whole only in a failure report (as RET asks, FULL
 * by default); RFC 3461 4.3: a DSN with no failure in it returns the headers only.
 *
 * A report about a tagged message is tagged as it was (RFC 8689 6): about
 * REQUIRETLS mail it returns the headers only, whatever RET said, and goes
 * with REQUIRETLS where the next hop meets it (RFC 8689 5); about
 * "TLS-Required: No" mail it carries that field too (RFC 8689 4.3).
 */
export function dsnMessage(
  message: BouncedMessage,
  reported: readonly ReportedRecipient[],
  reportingMta: string,
  now: number,
): NewMessage | undefined {
  if (message.mailFrom === "" || reported.length === 0) return undefined;
  const recipients = reported.map((r) => dsnRecipient(r, now));
  const anyFailed = recipients.some((r) => r.action === "failed");
  // RFC 8689 5: "the server MUST behave as if RET=HDRS was present"; "RET=FULL MUST be disregarded".
  const full = anyFailed && message.tlsTag !== "requiretls";
  const body = buildDsn({
    reportingMta,
    originalSender: message.mailFrom,
    envid: message.dsnEnvid ?? undefined,
    arrivalDate: message.createdAt,
    recipients,
    original: message.body,
    ret: full ? (message.dsnRet ?? "FULL") : "HDRS",
    tlsRequiredNo: message.tlsTag === "optional",
    now,
    messageId: reportingMta,
  });
  return {
    mailFrom: "",
    recipients: [{ address: message.mailFrom, domain: domainOf(message.mailFrom) }],
    body,
    source: "bounce",
    ...(message.tlsTag ? { tlsTag: message.tlsTag } : {}),
  };
}

/**
 * The failure DSN for a message's failed recipients, keeping only those whose
 * NOTIFY asks for it; none for the null sender or when NOTIFY declines it.
 */
export function bounceMessage(
  message: BouncedMessage,
  failed: readonly FailedRecipient[],
  reportingMta: string,
  now: number,
): NewMessage | undefined {
  const reported = failed
    .filter((r) => wantsFailureReport(r.notify))
    .map((r): ReportedRecipient => ({ ...r, kind: "failure", lastAttemptAt: now }));
  return dsnMessage(message, reported, reportingMta, now);
}
