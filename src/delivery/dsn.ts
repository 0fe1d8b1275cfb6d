/**
 * Delivery status notifications (RFC 3464) as a pure function: the bounce,
 * delay or success report sent to the envelope sender, as a complete
 * RFC 5322 message in a multipart/report (RFC 6522).
 *
 * Written by hand rather than with nodemailer's MailComposer: its build() is
 * asynchronous (stream based), while this is a synchronous pure function, and
 * the structure is fixed (three parts), so the MIME is small enough to audit.
 */
import { createHash } from "node:crypto";
import {
  asciiLine,
  CRLF,
  dsnAddress,
  foldField,
  oneLine,
  rfc5322Date,
  textPart,
  truncate,
  wrap,
} from "./dsn-format.ts";
import { returnedPart } from "./dsn-original.ts";

export interface DsnRecipient {
  address: string;
  /** ORCPT as given in RFC 3461 form "rfc822;addr" (already xtext-decoded). */
  originalRecipient?: string;
  /** RFC 3464 2.3.3; "relayed": passed to a next hop that does not do DSN. */
  action: "failed" | "delayed" | "delivered" | "relayed";
  /** RFC 3463 enhanced status, e.g. "5.1.1". */
  status: string;
  /** The remote reply text, e.g. "550 5.1.1 no such user", or a local error. */
  diagnostic?: string;
  remoteMta?: string;
  lastAttemptAt?: number;
  willRetryUntil?: number;
}

export interface DsnInput {
  /** Our host name. */
  reportingMta: string;
  /** The envelope sender; the DSN goes to this address. Never "" (no bounces of bounces). */
  originalSender: string;
  envid?: string;
  arrivalDate: number;
  recipients: DsnRecipient[];
  /** The raw original message. */
  original: Uint8Array;
  ret: "FULL" | "HDRS";
  /** Add "TLS-Required: No" (RFC 8689 3): the report is about mail sent with it. */
  tlsRequiredNo?: boolean;
  /** Beyond this many octets only the headers are returned. Default 100 KiB. */
  maxOriginalBytes?: number;
  now: number;
  /** Domain for the Message-ID. */
  messageId: string;
}

export const DEFAULT_MAX_ORIGINAL_BYTES = 100 * 1024;
/** Longest diagnostic kept, in characters; remote replies can be long multi-line texts. */
const MAX_DIAGNOSTIC = 2000;
const STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;

function validate(input: DsnInput): void {
  if (oneLine(input.originalSender) === "") {
    throw new RangeError(
      `DSN sender must not be empty (no DSN is sent for a null reverse-path): "${input.originalSender}"`,
    );
  }
  if (input.recipients.length === 0) throw new RangeError("DSN needs at least one recipient");
  for (const r of input.recipients) {
    if (!STATUS.test(r.status)) {
      throw new RangeError(`DSN status for "${r.address}" is not an RFC 3463 code: "${r.status}"`);
    }
    if (!["failed", "delayed", "delivered", "relayed"].includes(r.action)) {
      throw new RangeError(
        `DSN action for "${r.address}" is not failed/delayed/delivered/relayed: "${String(r.action)}"`,
      );
    }
  }
}

function subject(recipients: readonly DsnRecipient[]): string {
  if (recipients.some((r) => r.action === "failed")) return "Undelivered Mail Returned to Sender";
  if (recipients.some((r) => r.action === "delayed")) return "Delivery Status Notification (Delay)";
  return "Delivery Status Notification (Success)";
}

/** "smtp" when the text is an SMTP reply (RFC 3464 2.3.6), else our own diagnostic type. */
function diagnosticCode(diagnostic: string): string {
  const text = truncate(asciiLine(diagnostic), MAX_DIAGNOSTIC);
  return /^[2-5]\d\d(?:[ -]|$)/.test(text) ? `smtp; ${text}` : `X-Relay; ${text}`;
}

/** "rfc822;a@b" -> "rfc822; a@b"; a bare address is taken as rfc822. */
function originalRecipient(orcpt: string): string {
  const clean = asciiLine(orcpt);
  const semi = clean.indexOf(";");
  if (semi < 0) return `rfc822; ${clean}`;
  return `${clean.slice(0, semi).trim()}; ${clean.slice(semi + 1).trim()}`;
}

/** RFC 3464 2.2 and 2.3: the per-message block, then one block per recipient, blank lines between. */
function deliveryStatus(input: DsnInput): string {
  let out = foldField("Reporting-MTA", `dns; ${asciiLine(input.reportingMta)}`);
  if (input.envid !== undefined && asciiLine(input.envid) !== "") {
    out += foldField("Original-Envelope-Id", asciiLine(input.envid));
  }
  out += foldField("Arrival-Date", rfc5322Date(input.arrivalDate));
  for (const r of input.recipients) {
    out += CRLF;
    if (r.originalRecipient !== undefined && oneLine(r.originalRecipient) !== "") {
      out += foldField("Original-Recipient", originalRecipient(r.originalRecipient));
    }
    out += foldField("Final-Recipient", dsnAddress(r.address));
    out += foldField("Action", r.action);
    out += foldField("Status", r.status);
    if (r.remoteMta !== undefined && asciiLine(r.remoteMta) !== "") {
      out += foldField("Remote-MTA", `dns; ${asciiLine(r.remoteMta)}`);
    }
    if (r.diagnostic !== undefined && asciiLine(r.diagnostic) !== "") {
      out += foldField("Diagnostic-Code", diagnosticCode(r.diagnostic));
    }
    if (r.lastAttemptAt !== undefined) out += foldField("Last-Attempt-Date", rfc5322Date(r.lastAttemptAt));
    if (r.action === "delayed" && r.willRetryUntil !== undefined) {
      out += foldField("Will-Retry-Until", rfc5322Date(r.willRetryUntil));
    }
  }
  return out;
}

const INTRO: Record<DsnRecipient["action"], string> = {
  failed:
    "Your message could not be delivered to the following recipients. This is a permanent error; the mail system will not try again.",
  delayed:
    "Your message has not yet been delivered to the following recipients. The mail system will keep trying; you do not need to send it again.",
  delivered: "Your message was delivered to the following recipients.",
  relayed:
    "Your message was relayed to the following recipients' mail systems, which do not send delivery notifications; no further notification will follow from them.",
};

/** The human-readable first part: what happened, to whom, and what the remote server said. */
function explanation(input: DsnInput, reason: string | undefined): string {
  const lines = [`This is the mail system at host ${oneLine(input.reportingMta)}.`, ""];
  for (const action of ["failed", "delayed", "delivered", "relayed"] as const) {
    const group = input.recipients.filter((r) => r.action === action);
    if (group.length === 0) continue;
    lines.push(...wrap(INTRO[action]), "");
    for (const r of group) {
      lines.push(...wrap(`<${oneLine(r.address)}>: status ${r.status}`, 76, "  "));
      const said = r.diagnostic !== undefined ? truncate(oneLine(r.diagnostic), MAX_DIAGNOSTIC) : "";
      if (said !== "") {
        const who = r.remoteMta ? `host ${oneLine(r.remoteMta)} said` : "reason";
        lines.push(...wrap(`${who}: ${said}`, 76, "    "));
      }
      if (action === "delayed" && r.willRetryUntil !== undefined) {
        lines.push(...wrap(`will keep trying until ${rfc5322Date(r.willRetryUntil)}`, 76, "    "));
      }
    }
    lines.push("");
  }
  if (reason !== undefined) lines.push(...wrap(`Only the headers of your message are attached: ${reason}.`));
  while (lines[lines.length - 1] === "") lines.pop();
  return lines.join(CRLF) + CRLF;
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(needle) >= 0;
}

/** A boundary derived from `seed` that occurs in none of the bodies (RFC 2046 5.1.1). */
export function chooseBoundary(seed: string, bodies: readonly Uint8Array[]): string {
  for (let i = 0;; i++) {
    const boundary = `=_relay-dsn_${createHash("sha256").update(`${seed}:${i}`).digest("hex").slice(0, 32)}`;
    const b = new TextEncoder().encode(boundary);
    if (!bodies.some((body) => contains(body, b))) return boundary;
  }
}

/**
 * Build the DSN. Deterministic: Message-ID and boundary derive from a hash of
 * the input, so a retried build yields the same message. Throws RangeError on
 * an empty sender, no recipients, or a malformed status.
 */
export function buildDsn(input: DsnInput): Uint8Array {
  validate(input);
  const enc = new TextEncoder();
  const maxBytes = input.maxOriginalBytes ?? DEFAULT_MAX_ORIGINAL_BYTES;
  const third = returnedPart(input.original, input.ret, maxBytes);
  const first = textPart(explanation(input, third.reason));
  const second = {
    headers:
      "Content-Type: message/delivery-status\r\nContent-Description: Delivery report\r\nContent-Transfer-Encoding: 7bit\r\n",
    body: enc.encode(deliveryStatus(input)),
  };
  const parts = [first, second, third];

  const hash = createHash("sha256").update(JSON.stringify({ ...input, original: undefined })).update(input.original)
    .digest("hex");
  const boundary = chooseBoundary(hash, parts.map((p) => p.body));

  const domain = asciiLine(input.messageId).replace(/[\s<>@]/g, "");
  const sender = oneLine(input.originalSender);
  let head = "";
  head += foldField("From", `Mail Delivery System <MAILER-DAEMON@${asciiLine(input.reportingMta)}>`);
  head += foldField("To", sender);
  head += foldField("Subject", subject(input.recipients));
  head += foldField("Date", rfc5322Date(input.now));
  head += foldField("Message-ID", `<${input.now.toString(36)}.${hash.slice(32, 56)}@${domain}>`);
  head += "Auto-Submitted: auto-replied\r\n";
  if (input.tlsRequiredNo) head += "TLS-Required: No\r\n";
  head += "MIME-Version: 1.0\r\n";
  head += foldField("Content-Type", `multipart/report; report-type=delivery-status; boundary="${boundary}"`);
  if (third.eightBit) head += "Content-Transfer-Encoding: 8bit\r\n";
  head += CRLF;
  head += "This is a MIME-encapsulated message.\r\n";

  const chunks: Uint8Array[] = [enc.encode(head)];
  for (const part of parts) {
    chunks.push(enc.encode(`${CRLF}--${boundary}${CRLF}${part.headers}${CRLF}`), part.body);
  }
  chunks.push(enc.encode(`${CRLF}--${boundary}--${CRLF}`));
  return Buffer.concat(chunks);
}
