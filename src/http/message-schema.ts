import * as v from "valibot";
import { parseMailbox } from "../core/address.ts";
import { lanes } from "../core/lane.ts";
import { eventTypes } from "../queue/schema.ts";
import { pageLimit } from "./validation.ts";

/*
 * The one description of the HTTP API's JSON: the handlers validate with
 * these schemas and /openapi.json (hence /docs) is generated from them.
 * `v.metadata({ ref })` names a schema in the document's components.
 */

/** How far ahead `send_at` may be. */
export const MAX_SEND_AHEAD_MS = 30 * 24 * 3_600_000;

/**
 * Headers that `headers{}` may not set: they shape the envelope or the MIME
 * structure, and each has a dedicated field (or is the composer's job).
 */
export const STRUCTURAL_HEADERS: ReadonlyMap<string, string> = new Map([
  ["from", "from"],
  ["to", "to"],
  ["cc", "cc"],
  ["bcc", "bcc"],
  ["subject", "subject"],
  ["reply-to", "reply_to"],
  ["content-type", "text, html and attachments"],
  ["content-transfer-encoding", "text, html and attachments"],
  ["mime-version", "text, html and attachments (the composer sets it)"],
]);

/** An addr-spec, checked by the same RFC 5321 parser the SMTP front end uses. */
const address = v.pipe(
  v.string(),
  v.check((text) => parseMailbox(text, { utf8: true }).ok, (issue) => {
    const result = parseMailbox(String(issue.input), { utf8: true });
    return result.ok ? "invalid address" : result.error;
  }),
  v.description("an address (addr-spec), e.g. user@example.com"),
);

/** No CR, LF or NUL: a header value must never smuggle a second header (header injection). */
const headerText = v.pipe(v.string(), v.regex(/^[^\r\n\0]*$/, "must not contain CR, LF or NUL"));

export interface Mailbox {
  /** The display name, unquoted; "" when there is none. */
  readonly name: string;
  readonly address: string;
}

/**
 * `Name <addr>`, `"Name" <addr>` or a bare addr, one mailbox only: a list
 * ("a <x@y>, b <z@w>") is refused, so the header always shows exactly the
 * address the envelope uses.
 */
export function parseNameAddress(text: string): Mailbox | string {
  if (/[\r\n\0]/.test(text)) return "must not contain CR, LF or NUL";
  let name = "";
  let addr = text.trim();
  // "name <addr>": the last "<" opens the angle address when the only ">" after it ends the text.
  // Found by index, not by a regex: one over the white space backtracks cubically.
  const open = addr.lastIndexOf("<");
  if (open >= 0 && addr.indexOf(">", open) === addr.length - 1) {
    name = addr.slice(0, open).trim();
    addr = addr.slice(open + 1, -1).trim();
    if (/[<>]/.test(name)) return "expected one address: Name <address> or a bare address";
    const quoted = /^"((?:[^"\\]|\\.)*)"$/s.exec(name);
    if (quoted) name = quoted[1]!.replace(/\\(.)/g, "$1");
    else if (name.includes('"')) return "unbalanced quotes in the display name";
  } else if (/[<>]/.test(addr)) {
    return "expected one address: Name <address> or a bare address";
  }
  const parsed = parseMailbox(addr, { utf8: true });
  if (!parsed.ok) return parsed.error;
  return { name, address: addr };
}

/** "Name <addr>" or a bare addr; the address part is checked like any other. */
const nameAddress = v.pipe(
  v.string(),
  v.check((text) => typeof parseNameAddress(text) !== "string", (issue) => {
    const result = parseNameAddress(String(issue.input));
    return typeof result === "string" ? result : "expected an address or Name <address>";
  }),
  v.description('one mailbox: "Name <user@example.com>" or "user@example.com"'),
);

/** The envelope address of a `nameAddress` that passed validation. */
export function extractAddress(text: string): string {
  const parsed = parseNameAddress(text);
  return typeof parsed === "string" ? text.trim() : parsed.address;
}

const headerName = v.pipe(
  v.string(),
  v.regex(/^[!-9;-~]{1,76}$/, "invalid header name: 1-76 printable ASCII characters, no colon or space"),
  v.check(
    (name) => !STRUCTURAL_HEADERS.has(name.toLowerCase()),
    (issue) => {
      const field = STRUCTURAL_HEADERS.get(String(issue.input).toLowerCase());
      return `${String(issue.input)} cannot be set through headers; use ${field}`;
    },
  ),
);

const contentType = v.pipe(
  headerText,
  v.regex(
    /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*(;.*)?$/,
    "expected a MIME type such as text/plain",
  ),
);

/** Unknown fields are refused: a typo such as "bc" must not silently drop recipients. */
function strict<const E extends v.ObjectEntries>(entries: E) {
  return v.strictObject(
    entries,
    (issue) => issue.expected === "never" ? "unknown field" : `expected a JSON object, got ${issue.received}`,
  );
}

const common = {
  tags: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.minLength(1, "a tag must not be empty"), v.maxLength(64, "at most 64 characters"))),
      v.maxLength(20, "at most 20 tags"),
      v.description("labels to group and filter messages by"),
    ),
  ),
  metadata: v.optional(
    v.pipe(v.record(v.string(), v.unknown()), v.description("your own data, returned with the message and its events")),
  ),
  priority: v.optional(
    v.pipe(
      v.picklist(lanes, 'expected "transactional" or "bulk"'),
      v.description(
        "the priority lane: transactional mail is sent before bulk mail, which never holds it up. " +
          "Without it: the header named by RELAY_PRIORITY_HEADER, then the API key's priority, then transactional",
      ),
    ),
  ),
  send_at: v.optional(
    v.pipe(
      v.string(),
      v.isoTimestamp("expected an ISO 8601 timestamp such as 2030-01-01T09:00:00Z"),
      v.description("deliver no earlier than this (ISO 8601); a past time means now; at most 30 days ahead"),
    ),
  ),
  require_tls: v.optional(
    v.pipe(
      v.boolean("expected true or false"),
      v.description(
        "REQUIRETLS (RFC 8689): relay only over STARTTLS with a certificate verified for an MX host named by the " +
          "domain's MTA-STS policy, to a server that advertises REQUIRETLS; otherwise the message bounces (5.7.10, 5.7.30). " +
          'A "TLS-Required: No" header field instead asks for delivery even where the recipient\'s MTA-STS policy would refuse it; ' +
          "with require_tls it is ignored",
      ),
    ),
  ),
};

export const rawMessageSchema = v.pipe(
  strict({
    mail_from: v.pipe(
      v.string('expected an address or "" (the null sender)'),
      v.check((text) => text === "" || parseMailbox(text, { utf8: true }).ok, (issue) => {
        const result = parseMailbox(String(issue.input), { utf8: true });
        return result.ok ? "invalid address" : result.error;
      }),
      v.description('the envelope sender (MAIL FROM); "" is the null sender'),
    ),
    rcpt_to: v.pipe(
      v.array(address),
      v.minLength(1, "at least one recipient"),
      v.description("the envelope recipients (RCPT TO)"),
    ),
    raw: v.pipe(
      v.string(),
      v.minLength(1, "the message must not be empty"),
      // RFC 5322 2.1.1: the same limit the SMTP front end enforces; a longer line
      // would be refused or rewrapped by the next hop, breaking the DKIM signature.
      v.check(
        (text) => text.split(/\r?\n/).every((line) => Buffer.byteLength(line) <= 998),
        "a line of the message is longer than 998 octets (RFC 5322 2.1.1)",
      ),
      v.description("the whole RFC 5322 message, headers and body; bare LF becomes CRLF; lines of at most 998 octets"),
    ),
    ...common,
  }),
  v.title("RawMessage"),
  v.description("A message you composed yourself, with its envelope."),
  v.metadata({ ref: "RawMessage" }),
);

export const attachmentSchema = v.pipe(
  strict({
    filename: v.pipe(headerText, v.minLength(1, "must not be empty"), v.maxLength(255, "at most 255 characters")),
    content_type: v.optional(v.pipe(contentType, v.description("MIME type; guessed from the filename when left out"))),
    content: v.pipe(v.string(), v.base64("expected base64"), v.description("the content, base64")),
  }),
  v.metadata({ ref: "Attachment" }),
);

export const structuredMessageSchema = v.pipe(
  strict({
    from: v.pipe(nameAddress, v.description("the author; its address is also the envelope sender")),
    to: v.optional(v.array(nameAddress), []),
    cc: v.optional(v.array(nameAddress), []),
    bcc: v.optional(v.pipe(v.array(nameAddress), v.description("recipients not shown in the headers")), []),
    reply_to: v.optional(nameAddress),
    subject: v.optional(headerText, ""),
    text: v.optional(v.pipe(v.string(), v.description("the plain-text part"))),
    html: v.optional(v.pipe(v.string(), v.description("the HTML part"))),
    headers: v.optional(
      v.pipe(
        v.record(headerName, headerText),
        v.description(
          "extra header fields, name to value; From, To, Cc, Bcc, Subject, Reply-To, Content-Type, " +
            "Content-Transfer-Encoding and MIME-Version are refused (use the dedicated fields)",
        ),
      ),
    ),
    attachments: v.optional(v.array(attachmentSchema)),
    ...common,
  }),
  v.title("StructuredMessage"),
  v.description("A message the relay composes (MIME) from its parts; at least one of to, cc, bcc."),
  v.metadata({ ref: "StructuredMessage" }),
);

/** The request body of POST /v1/messages, for the document; the handler picks the branch itself. */
export const sendRequestSchema = v.union([rawMessageSchema, structuredMessageSchema]);

export type RawMessageBody = v.InferOutput<typeof rawMessageSchema>;
export type StructuredMessageBody = v.InferOutput<typeof structuredMessageSchema>;

/** A body with any envelope field is a raw message; anything else is structured. */
export function isRawRequest(json: unknown): boolean {
  return typeof json === "object" && json !== null && !Array.isArray(json) &&
    ("raw" in json || "mail_from" in json || "rcpt_to" in json);
}

// ---- responses ------------------------------------------------------------------

export const sendResponseSchema = v.pipe(
  v.object({
    id: v.pipe(v.string(), v.description("the message id (ULID)")),
    recipients: v.array(v.object({
      email: v.string(),
      status: v.pipe(
        v.picklist(["queued", "suppressed", "held"]),
        v.description(
          "suppressed: on the suppression list; accepted but never sent (its `suppressed` event says why); held: quarantined by a content scanner, sent once released",
        ),
      ),
    })),
  }),
  v.metadata({ ref: "SendResult" }),
);

const timestamp = v.pipe(v.string(), v.isoTimestamp());

export const eventSchema = v.pipe(
  v.objectWithRest(
    {
      id: v.number(),
      cursor: v.pipe(v.string(), v.description("pass as `after` to resume after this event")),
      at: timestamp,
      type: v.picklist(eventTypes),
      message_id: v.nullable(v.string()),
      recipient: v.nullable(v.string()),
    },
    v.unknown(),
  ),
  v.description(
    "One change of a recipient's state; type-specific fields (reply, category, ...) alongside. " +
      "`domain_changed` (message_id and recipient null): a DNS check found a sending domain's record failing or gone " +
      "that passed before, or passing again (domain, record, name, before, after, fix). " +
      "`destination_throttled`, `destination_suspended`, `destination_resumed` (message_id and recipient null): " +
      "a destination's state changed (destination, provider, reason `automation` with the rule and the reply that " +
      "made it act, or `operator`; a throttle's limits until when, and when it ends after its recovery steps; a suspension " +
      "until when, null until resumed).",
  ),
  v.metadata({ ref: "Event" }),
);

export const eventPageSchema = v.pipe(
  v.object({
    events: v.array(eventSchema),
    next: v.pipe(v.string(), v.description("the cursor to pass as `after` for the next page")),
  }),
  v.metadata({ ref: "EventPage" }),
);

export const messageViewSchema = v.pipe(
  v.object({
    id: v.string(),
    created_at: timestamp,
    mail_from: v.string(),
    source: v.pipe(
      v.picklist(["smtp", "http", "bounce", "report"]),
      v.description("how it came in; bounce: a DSN the relay made; report: a TLS report the relay made (RFC 8460)"),
    ),
    size: v.number(),
    tags: v.array(v.string()),
    metadata: v.record(v.string(), v.unknown()),
    require_tls: v.pipe(v.boolean(), v.description("sent with REQUIRETLS (RFC 8689)")),
    recipients: v.array(
      v.object({
        email: v.string(),
        state: v.string(),
        priority: v.pipe(v.picklist(lanes), v.description("the priority lane it is delivered in")),
        attempts: v.number(),
        next_attempt_at: v.pipe(v.nullable(timestamp), v.description("when it is due; held: once released")),
        last_reply: v.nullable(v.string()),
        attempt_log: v.pipe(
          v.array(v.object({
            at: timestamp,
            outcome: v.picklist(["deferred", "delivered", "bounced", "expired"]),
            attempt: v.nullable(v.pipe(v.number(), v.description("attempts counted by then"))),
            reply: v.nullable(v.string()),
            mx: v.nullable(v.pipe(v.string(), v.description("the host that answered"))),
          })),
          v.description(
            "every outcome recorded for it, oldest first: each attempt's reply, and a bounce or expiry without one " +
              "(the operator's bounce, a later hop's bounce)",
          ),
        ),
      }),
    ),
    events: v.array(
      v.objectWithRest({
        id: v.number(),
        at: timestamp,
        type: v.picklist(eventTypes),
        recipient: v.nullable(v.string()),
      }, v.unknown()),
    ),
  }),
  v.metadata({ ref: "Message" }),
);

export const cancelResultSchema = v.pipe(
  v.object({
    id: v.string(),
    cancelled: v.pipe(v.number(), v.description("how many recipients were still queued and are now cancelled")),
  }),
  v.metadata({ ref: "CancelResult" }),
);

export const problemSchema = v.pipe(
  v.object({
    type: v.string(),
    title: v.string(),
    status: v.number(),
    detail: v.optional(v.string()),
    errors: v.optional(
      v.pipe(
        v.array(
          v.object({
            field: v.pipe(v.string(), v.description("dot path, e.g. rcpt_to.1")),
            line: v.optional(v.pipe(v.number(), v.description("for a document in the body: the line of the field"))),
            message: v.string(),
          }),
        ),
        v.description("every invalid field, not just the first"),
      ),
    ),
    id: v.optional(
      v.pipe(v.string(), v.description("a message a content scanner refused: the id its `rejected` events carry")),
    ),
  }),
  v.description("RFC 9457 problem details (application/problem+json)"),
  v.metadata({ ref: "Problem" }),
);

// ---- parameters -------------------------------------------------------------------

export const messageIdParamSchema = v.object({
  id: v.pipe(v.string(), v.minLength(1), v.description("the message id returned by POST /v1/messages")),
});

export const eventsQuerySchema = v.object({
  after: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, "expected a cursor (a non-negative integer)"),
      v.description("the cursor of the last event seen (`next` of the previous page); 0 for the start"),
    ),
    "0",
  ),
  limit: pageLimit,
  type: v.optional(
    v.pipe(
      v.string(),
      v.transform((s) => s.split(",").map((t) => t.trim()).filter((t) => t !== "")),
      v.minLength(1, "expected one or more event types, separated by commas"),
      v.array(v.picklist(eventTypes, `expected event types among ${eventTypes.join(", ")}`)),
      v.description("only events of these types (comma list), e.g. bounced,expired"),
    ),
  ),
  message: v.optional(v.pipe(v.string(), v.minLength(1), v.description("only events of this message id"))),
  recipient: v.optional(
    v.pipe(v.string(), v.minLength(1), v.description("only events of this recipient address, as it was sent to")),
  ),
  tag: v.optional(v.pipe(v.string(), v.minLength(1), v.description("only events of messages with this tag"))),
});
