/**
 * Bounces that are not RFC 3464 reports, as the MTAs and providers that
 * still send them shape them: the notice's wording says who made it; the
 * failed addresses come from X-Failed-Recipients (Exim, Gmail) or the
 * address lines of the notice; the reply from the text after each address.
 */
import type { BounceFormat, FailedRecipient } from "./report.ts";

interface Shape {
  readonly format: BounceFormat;
  /** Matched against the subject and the notice text. */
  readonly signature: RegExp;
  /** A delay warning rather than a failure. */
  readonly delayed?: RegExp;
}

const SHAPES: readonly Shape[] = [
  { format: "qmail", signature: /Hi\. This is the qmail-send program/i },
  { format: "yahoo", signature: /Sorry, we were unable to deliver your message/i },
  {
    format: "exim",
    signature:
      /This message was created automatically by mail delivery software[\s\S]*(could not be delivered|has not yet been delivered)/i,
    delayed: /has not yet been delivered/i,
  },
  {
    format: "postfix",
    signature: /^(Undelivered Mail Returned to Sender|Delayed Mail)|This is the mail system at host/im,
    delayed: /^Delayed Mail|delivery to the following recipients? was delayed/im,
  },
  {
    format: "microsoft",
    signature:
      /Delivery has failed to these recipients or groups|Your message did not reach some or all of the intended recipients|^Undeliverable:/im,
  },
  {
    format: "gmail",
    signature: /^Delivery Status Notification \((Failure|Delay)\)|Your message wasn't delivered to|Address not found/im,
    delayed: /^Delivery Status Notification \(Delay\)|Message not delivered yet|Delivery incomplete/im,
  },
];

/**
 * A line where a notice's own text ends and the returned message begins.
 * Tested line by line, with no ".*" around the phrase: over a long run of
 * dashes or blank lines such a regex backtracks quadratically.
 */
function isCopyMarker(line: string): boolean {
  if (line.startsWith("--")) return /copy of|original message|below this line|returned message/i.test(line);
  return /^(Original message headers:$|[ \t]*Received: from )/i.test(line);
}

/** Where the notice's own text ends: the first copy marker line, or its end. */
function ownTextEnd(notice: string): number {
  let at = 0;
  for (const line of notice.split("\n")) {
    if (isCopyMarker(line)) return at;
    at += line.length + 1;
  }
  return notice.length;
}

/** Holds an address; the lookbehind starts the match at an "@", so a long run without one is scanned once. */
const ADDRESS = /(?<=[^\s<>"'():;,\[\]])@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+/;

/** A reply line: three-digit code, optional enhanced code, text (Exchange writes "#550", Gmail "smtp;550"). */
const REPLY = /(?:^|[\s:'(;#])([45][0-5]\d):?[ -](?:#?([45]\.\d{1,3}\.\d{1,3})\b)?([^\n]*)/m;
const ENHANCED = /(?:^|[\s#(;])#?([45]\.\d{1,3}\.\d{1,3})\b/;

export function textBounce(
  body: string,
  subject: string,
  failedRecipients: string | undefined,
): { format: BounceFormat; recipients: FailedRecipient[] } | undefined {
  const notice = body.replace(/\r\n?/g, "\n");
  const own = notice.slice(0, ownTextEnd(notice));
  const shape = SHAPES.find((s) => s.signature.test(`${subject}\n${own}`));
  if (!shape) return undefined;
  const delayed = shape.delayed?.test(`${subject}\n${own}`) === true;
  const addresses = failedAddresses(own, failedRecipients);
  const recipients = addresses.map((address, i): FailedRecipient => {
    const from = own.indexOf(address);
    const next = addresses.slice(i + 1).map((a) => own.indexOf(a)).find((at) => at > from);
    const block = from < 0 ? own : own.slice(from + address.length, next);
    return { address, ...replyIn(block, delayed) };
  });
  if (recipients.length === 0) recipients.push(replyIn(own, delayed));
  return { format: shape.format, recipients };
}

function failedAddresses(notice: string, failedRecipients: string | undefined): string[] {
  const named = (failedRecipients ?? "").split(",").map((a) => a.trim()).filter((a) => ADDRESS.test(a));
  if (named.length > 0) return unique(named);
  // "<a@b>:" / "a@b:" at the start of a line (qmail, Yahoo, Postfix), or an address alone on an indented line (Exim, Exchange).
  // [^\S\n]: white space within the line; a \s* there would cross blank lines, quadratically.
  const listed = [...notice.matchAll(/^[^\S\n]*<?([^\s<>"'():;,]+@[^\s<>"'():;,]+)>?(:|\s*$)/gm)].map((m) => m[1]!);
  if (listed.length > 0) return unique(listed);
  const mentioned =
    /(?:delivered to|deliver (?:your message )?to|recipients? (?:or groups)?:?)\s*<?([^\s<>"'():;,]+@[^\s<>"'():;,]+?)>?[\s.,]/i
      .exec(notice)?.[1];
  return mentioned ? [mentioned] : [];
}

function replyIn(block: string, delayed: boolean): Omit<FailedRecipient, "address"> {
  const reply = REPLY.exec(block);
  const enhanced = reply?.[2] ?? ENHANCED.exec(block)?.[1];
  const status = enhanced ?? (reply ? `${reply[1]![0]}.0.0` : delayed ? "4.0.0" : "5.0.0");
  const diagnostic = reply ? `${reply[1]} ${enhanced ? `${enhanced} ` : ""}${reply[3]!.trim()}`.trim() : undefined;
  return { action: delayed || status.startsWith("4") ? "delayed" : "failed", status, diagnostic };
}

const unique = (values: string[]) => [...new Set(values)];
