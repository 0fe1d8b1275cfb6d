/**
 * A report as mail (RFC 8460 5.3): a multipart/report (RFC 6522) with
 * report-type "tlsrpt", a human-readable part, and the gzip-compressed JSON
 * as application/tlsrpt+gzip under its file name (RFC 8460 5.1, 5.2).
 */
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import { toCrlf } from "../../core/crlf.ts";
import { splitMessage } from "../../core/header-section.ts";
import { reportFilename, rfc3339 } from "./report.ts";

export interface ReportMailInput {
  /** The From address, at the submitter's domain (RFC 8460 5.3: TLS-Report-Submitter matches the From domain). */
  readonly from: string;
  readonly to: string;
  /** The reporting MTA's domain (RELAY_HOSTNAME). */
  readonly submitter: string;
  readonly policyDomain: string;
  readonly reportId: string;
  readonly periodStart: number;
  readonly periodEnd: number;
  readonly gzipped: Uint8Array;
  readonly now: number;
}

export async function reportMail(input: ReportMailInput): Promise<Uint8Array> {
  const { submitter, policyDomain, reportId } = input;
  const composer = new MailComposer({
    from: input.from,
    to: input.to,
    date: new Date(input.now),
    // RFC 8460 5.3: "Report" "Domain:" domain "Submitter:" domain "Report-ID:" msg-id.
    subject: `Report Domain: ${policyDomain} Submitter: ${submitter} Report-ID: <${reportId}>`,
    headers: {
      "TLS-Report-Domain": policyDomain,
      "TLS-Report-Submitter": submitter,
      // RFC 8460 3: reports are delivered "despite any TLS-related failures"; RFC 8689 3 says so to
      // every hop, and our own delivery skips the recipient's MTA-STS policy for it (and counts none
      // of its sessions, so a report never begets another).
      "TLS-Required": "No",
      // RFC 3834 5: machine-made, so that nobody answers it automatically.
      "Auto-Submitted": "auto-generated",
    },
    text: `This is an aggregate TLS report (RFC 8460) from ${submitter} about mail to ${policyDomain}\r\n` +
      `from ${rfc3339(input.periodStart)} to ${rfc3339(input.periodEnd)}. The report is attached.\r\n`,
    attachments: [
      {
        filename: reportFilename(submitter, policyDomain, input.periodStart, input.periodEnd),
        contentType: "application/tlsrpt+gzip",
        content: Buffer.from(input.gzipped),
      },
    ],
  });
  const root = composer.compile();
  // MailComposer makes text plus attachment a multipart/mixed; the report type is RFC 6522's.
  root.setHeader("Content-Type", 'multipart/report; report-type="tlsrpt"');
  const built: Buffer = await root.build();
  const message = toCrlf(new Uint8Array(built.buffer, built.byteOffset, built.byteLength));
  spellTlsFields(message);
  return message;
}

/**
 * MailComposer capitalizes field names word by word ("Tls-Report-Domain");
 * RFC 8460 5.3 and RFC 8689 3 spell them with "TLS". Names are
 * case-insensitive (RFC 5322 1.2.2), but reports are searched by them.
 * Rewritten in place: the name keeps its length.
 */
function spellTlsFields(message: Uint8Array): void {
  for (const field of splitMessage(message).fields) {
    if (TLS_FIELDS.has(field.name)) message.set(TLS, field.start);
  }
}

const TLS_FIELDS = new Set(["tls-report-domain", "tls-report-submitter", "tls-required"]);
const TLS = new TextEncoder().encode("TLS");
