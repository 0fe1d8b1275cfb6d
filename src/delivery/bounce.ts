import { replyText, type Reply } from "../core/reply.ts";
import { domainOf } from "../ingress/submit.ts";
import type { NewMessage } from "../queue/store.ts";
import { buildDsn, type DsnRecipient } from "./dsn.ts";

export interface FailedRecipient {
  readonly address: string;
  readonly reply: Reply;
  readonly expired: boolean;
  readonly notify?: string;
  readonly orcpt?: string;
  readonly remoteMta?: string;
}

export interface BouncedMessage {
  readonly mailFrom: string;
  readonly createdAt: number;
  readonly body: Uint8Array;
  readonly dsnRet: "FULL" | "HDRS" | null;
  readonly dsnEnvid: string | null;
}

/** RFC 3461 4.1: without NOTIFY the MTA reports failures; NEVER means no DSN at all. */
function wantsFailureReport(notify: string | undefined): boolean {
  if (notify === undefined || notify === "") return true;
  return notify.toUpperCase().split(",").includes("FAILURE");
}

function dsnStatus(r: FailedRecipient): string {
  if (r.expired) return "5.4.7";
  // A remote server's enhanced code is used only when it is well formed (RFC 3463 2).
  if (r.reply.enhanced && /^[245]\.\d{1,3}\.\d{1,3}$/.test(r.reply.enhanced)) return r.reply.enhanced;
  return r.reply.code >= 500 ? "5.0.0" : "4.0.0";
}

/**
 * The one DSN for a message's failed recipients, to go back to its sender; none
 * for the null sender (RFC 5321 4.5.5: never bounce a bounce) or when NOTIFY declines it.
 */
export function bounceMessage(
  message: BouncedMessage,
  failed: readonly FailedRecipient[],
  reportingMta: string,
  now: number,
): NewMessage | undefined {
  if (message.mailFrom === "") return undefined;
  const reported = failed.filter((r) => wantsFailureReport(r.notify));
  if (reported.length === 0) return undefined;
  const recipients: DsnRecipient[] = reported.map((r) => ({
    address: r.address,
    originalRecipient: r.orcpt,
    action: "failed",
    status: dsnStatus(r),
    diagnostic: replyText(r.reply),
    remoteMta: r.remoteMta,
    lastAttemptAt: now,
  }));
  const body = buildDsn({
    reportingMta,
    originalSender: message.mailFrom,
    envid: message.dsnEnvid ?? undefined,
    arrivalDate: message.createdAt,
    recipients,
    original: message.body,
    ret: message.dsnRet ?? "FULL",
    now,
    messageId: reportingMta,
  });
  return {
    mailFrom: "",
    recipients: [{ address: message.mailFrom, domain: domainOf(message.mailFrom) }],
    body,
    source: "bounce",
  };
}
