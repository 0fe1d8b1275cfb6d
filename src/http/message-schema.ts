import * as v from "valibot";
import { parseMailbox } from "../core/address.ts";

/** An addr-spec, checked by the same RFC 5321 parser the SMTP front end uses. */
const address = v.pipe(
  v.string(),
  v.check((text) => parseMailbox(text, { utf8: true }).ok, (issue) => {
    const result = parseMailbox(String(issue.input), { utf8: true });
    return result.ok ? "invalid address" : result.error;
  }),
);

/** No CR or LF: a header value must never smuggle a second header (header injection). */
const headerText = v.pipe(v.string(), v.regex(/^[^\r\n\0]*$/, "must not contain CR, LF or NUL"));

/** "Name <addr>" or a bare addr; the address part is checked like any other. */
const nameAddress = v.pipe(
  headerText,
  v.check((text) => parseMailbox(extractAddress(text), { utf8: true }).ok, "expected an address or Name <address>"),
);

export function extractAddress(text: string): string {
  const angle = /<([^<>]*)>\s*$/.exec(text);
  return (angle ? angle[1]! : text).trim();
}

const common = {
  tags: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(64))), v.maxLength(20))),
  metadata: v.optional(v.record(v.string(), v.unknown())),
  priority: v.optional(v.picklist(["transactional", "bulk"])),
  send_at: v.optional(v.pipe(v.string(), v.isoTimestamp("expected an ISO 8601 timestamp"))),
};

export const rawMessageSchema = v.object({
  mail_from: v.union([v.literal(""), address], "expected an address or \"\" (the null sender)"),
  rcpt_to: v.pipe(v.array(address), v.minLength(1, "at least one recipient")),
  raw: v.pipe(v.string(), v.minLength(1, "the message must not be empty")),
  ...common,
});

export const structuredMessageSchema = v.object({
  from: nameAddress,
  to: v.optional(v.array(nameAddress), []),
  cc: v.optional(v.array(nameAddress), []),
  bcc: v.optional(v.array(nameAddress), []),
  reply_to: v.optional(nameAddress),
  subject: v.optional(headerText, ""),
  text: v.optional(v.string()),
  html: v.optional(v.string()),
  headers: v.optional(v.record(v.pipe(v.string(), v.regex(/^[!-9;-~]+$/, "invalid header name")), headerText)),
  attachments: v.optional(
    v.array(
      v.object({
        filename: headerText,
        content_type: v.optional(headerText),
        content: v.pipe(v.string(), v.base64("expected base64")),
      }),
    ),
  ),
  ...common,
});

export type RawMessageBody = v.InferOutput<typeof rawMessageSchema>;
export type StructuredMessageBody = v.InferOutput<typeof structuredMessageSchema>;
