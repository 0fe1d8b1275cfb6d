import { Hono } from "hono";
import { describeRoute, resolver, validator } from "hono-openapi";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import * as v from "valibot";
import type { Clock } from "../core/clock.ts";
import { parseMailbox } from "../core/address.ts";
import { toCrlf } from "../core/crlf.ts";
import { type LiteralPolicy, literalRefusal } from "../ingress/access.ts";
import { errorText, type Logger } from "../core/log.ts";
import { headerLane } from "../ingress/lane.ts";
import { SenderRefused } from "../ingress/sender-policy.ts";
import { ContentRefused, InsufficientStorage } from "../ingress/submit.ts";
import { replyText } from "../core/reply.ts";
import type { Accepted, Ingress } from "../ingress/submit.ts";
import type { QueueStore } from "../queue/store.ts";
import { ADMIN_PRINCIPAL, type AuthEnv, senderAllowed } from "./auth.ts";
import { idempotency, type IdempotencyStore } from "./idempotency.ts";
import {
  cancelResultSchema,
  extractAddress,
  isRawRequest,
  type Mailbox,
  MAX_SEND_AHEAD_MS,
  messageIdParamSchema,
  messageViewSchema,
  parseNameAddress,
  type RawMessageBody,
  rawMessageSchema,
  sendRequestSchema,
  sendResponseSchema,
  type StructuredMessageBody,
  structuredMessageSchema,
} from "./message-schema.ts";
import { json, problemResponses } from "./openapi-helpers.ts";
import { type FieldError, problem } from "./problem.ts";
import { fieldErrors, paramHook } from "./validation.ts";

export interface MessageRouteDeps {
  readonly ingress: Pick<Ingress, "submit">;
  readonly store: Pick<QueueStore, "messageView" | "control">;
  readonly idempotency: IdempotencyStore;
  readonly log: Logger;
  readonly clock: Clock;
  readonly maxMessageBytes: number;
  readonly maxRecipients: number;
  /** Which address literals envelope addresses may name (access.ts). */
  readonly literals: LiteralPolicy;
  /** RELAY_PRIORITY_HEADER: the header field that may name a message's priority lane. */
  readonly priorityHeader?: string;
  /** Whether the node drains (`relay drain`): it takes no new mail. */
  readonly draining?: () => boolean;
}

/** The outcome events of one recipient, oldest first: what GET /v1/messages/:id shows as its attempts. */
function attemptLog(
  events: readonly { at: number; type: string; recipient: string | null; data: Record<string, unknown> }[],
  address: string,
) {
  const outcomes = ["deferred", "delivered", "bounced", "expired"] as const;
  const text = (value: unknown) => (typeof value === "string" ? value : null);
  return events.flatMap((e) => {
    const outcome = outcomes.find((o) => o === e.type);
    if (outcome === undefined || e.recipient !== address) return [];
    return [{
      at: new Date(e.at).toISOString(),
      outcome,
      attempt: typeof e.data.attempt === "number" ? e.data.attempt : null,
      reply: text(e.data.reply),
      mx: text(e.data.mx),
    }];
  });
}

interface Prepared {
  readonly mailFrom: string;
  readonly recipients: string[];
  readonly body: Uint8Array;
}

/** JSON message text usually has bare LF; RFC 5322 wants CRLF, the queue's form (src/core/crlf.ts). */
function crlfText(text: string): Uint8Array {
  return toCrlf(new TextEncoder().encode(text));
}

function prepareRaw(body: RawMessageBody): Prepared {
  return { mailFrom: body.mail_from, recipients: body.rcpt_to, body: crlfText(body.raw) };
}

/** Validated by the schema already; a mailbox object leaves nodemailer nothing to re-parse. */
function mailbox(text: string): Mailbox {
  const parsed = parseNameAddress(text);
  if (typeof parsed === "string") throw new Error(`unvalidated address: ${parsed}`);
  return parsed;
}

async function prepareStructured(body: StructuredMessageBody): Promise<Prepared> {
  const from = mailbox(body.from);
  const [to, cc, bcc] = [body.to, body.cc, body.bcc].map((list) => list.map(mailbox)) as [
    Mailbox[],
    Mailbox[],
    Mailbox[],
  ];
  const composer = new MailComposer({
    from,
    to,
    cc,
    bcc,
    replyTo: body.reply_to === undefined ? undefined : mailbox(body.reply_to),
    subject: body.subject,
    text: body.text,
    html: body.html,
    headers: body.headers,
    attachments: body.attachments?.map((a) => ({
      filename: a.filename,
      contentType: a.content_type,
      content: Buffer.from(a.content, "base64"),
    })),
  });
  const built: Buffer = await composer.compile().build();
  return {
    mailFrom: from.address,
    recipients: [...to, ...cc, ...bcc].map((m) => m.address),
    body: toCrlf(new Uint8Array(built)),
  };
}

/** Checks that need the clock: `send_at` at most 30 days ahead; a past time means now. */
function sendAtErrors(json: unknown, now: number): FieldError[] {
  if (typeof json !== "object" || json === null || !("send_at" in json) || typeof json.send_at !== "string") return [];
  const at = Date.parse(json.send_at);
  if (!Number.isFinite(at)) return [{ field: "send_at", message: "not a valid point in time" }];
  if (at > now + MAX_SEND_AHEAD_MS) return [{ field: "send_at", message: "at most 30 days ahead" }];
  return [];
}

/**
 * Envelope addresses at an address literal the relay may not deliver to
 * (access.ts, literalRefusal), by field: recipients, and the sender, where bounces go.
 */
function literalErrors(json: unknown, isRaw: boolean, literals: LiteralPolicy): FieldError[] {
  if (typeof json !== "object" || json === null) return [];
  const body = json as Record<string, unknown>;
  const list = (name: string): [string, unknown][] => {
    const value = body[name];
    return Array.isArray(value) ? value.map((item, i) => [`${name}.${i}`, item]) : [];
  };
  const fields: [string, unknown][] = isRaw
    ? [["mail_from", body.mail_from], ...list("rcpt_to")]
    : [["from", body.from], ...list("to"), ...list("cc"), ...list("bcc")];
  const errors: FieldError[] = [];
  for (const [field, value] of fields) {
    if (typeof value !== "string") continue;
    const parsed = parseMailbox(isRaw ? value : extractAddress(value), { utf8: true });
    const refused = parsed.ok ? literalRefusal(literals, parsed.mailbox.domain) : undefined;
    if (refused) errors.push({ field, message: refused.text });
  }
  return errors;
}

/**
 * RELAY_PRIORITY_HEADER in a message that has no `priority` field: a value
 * other than transactional or bulk is refused, naming the `headers` entry
 * (structured) or `raw` that carries it. Over SMTP such a value is only
 * logged (ingress), as the client may not be able to change it.
 */
function priorityHeaderErrors(
  header: string | undefined,
  options: { priority?: unknown; headers?: Record<string, string> },
  body: Uint8Array,
): FieldError[] {
  if (header === undefined || options.priority !== undefined) return [];
  const found = headerLane(body, header);
  if (found === undefined || "lane" in found) return [];
  const key = Object.keys(options.headers ?? {}).find((name) => name.toLowerCase() === header.toLowerCase());
  return [{
    field: key === undefined ? "raw" : `headers.${key}`,
    message: `the ${header} header names the priority (RELAY_PRIORITY_HEADER): expected transactional or bulk, got ${
      JSON.stringify(found.unknown)
    }; or set the priority field`,
  }];
}

const messageTags = ["messages"];

export function messageRoutes(deps: MessageRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>();

  app.post(
    "/",
    describeRoute({
      tags: messageTags,
      summary: "Send a message",
      description: "Structured (the relay composes the MIME message) or raw (your RFC 5322 text with its envelope). " +
        "Answers 202 once the message and every recipient are durable. With an `Idempotency-Key`, " +
        "the same request repeated within 24 hours gets the first answer again (header `Idempotency-Replayed: true`) " +
        "and sends nothing; the same key with a different request is 409. " +
        "A key limited to sender domains may only use those in `mail_from` or `from`. " +
        "With RELAY_SENDER_POLICY=verified (the default), an API key may only send mail whose From header " +
        "(`from`, or the From line of `raw`) is at a verified sending domain within its sender domains; otherwise 403 naming the field. " +
        "An envelope address at an address literal of this node, its loopback or a private, link-local, multicast or reserved " +
        "address is 422 naming the field, unless RELAY_ROUTES names the literal.",
      security: [{ bearer: ["send"] }],
      parameters: [
        {
          name: "Idempotency-Key",
          in: "header",
          required: false,
          description: "1-255 printable ASCII characters, unique per distinct request; kept 24 hours",
          schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x20-\\x7e]+$" },
        },
      ],
      requestBody: { required: true, content: { "application/json": { schema: resolver(sendRequestSchema) } } },
      responses: {
        202: json("Accepted: on disk, queued for delivery", sendResponseSchema),
        ...problemResponses({
          400: "The body is not JSON, or the Idempotency-Key is malformed",
          401: "Missing or unknown bearer token",
          403:
            'The token lacks the "send" scope, or the sender domain is not allowed for it (or not verified: RELAY_SENDER_POLICY)',
          409: "The Idempotency-Key was used with a different request",
          413: "The message is larger than RELAY_MAX_MESSAGE_BYTES",
          422:
            "Invalid fields (every one is listed in `errors`), or a content scanner (RELAY_MILTERS) refused the message: `detail` gives its reply",
          503:
            "The node is draining (POST /v1/drain): send through another node; or it is receiving as many messages as its memory " +
            "for them allows (RELAY_RECEIVING_MEMORY), or a content scanner asks to try again later (Retry-After)",
          507:
            "The node's disk is full (below RELAY_MIN_FREE_BYTES): nothing was stored; try again later (Retry-After)",
        }),
      },
    }),
    async (c, next) => {
      if (!deps.draining?.()) return await next();
      // Before the Idempotency-Key: a refusal is no answer to keep (a fleet's other nodes share the keys).
      c.header("Retry-After", "60");
      return problem(
        c,
        503,
        "Node draining",
        "this node is draining: it takes no new mail; send through another node of the fleet",
      );
    },
    idempotency(
      deps.idempotency,
      (error, c) =>
        deps.log("error", "keeping the answer for Idempotency-Key failed", {
          request: c.get("requestId"),
          error: errorText(error),
        }),
    ),
    async (c) => {
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(await c.req.arrayBuffer()));
      } catch {
        return problem(c, 400, "Bad Request", "the body is not valid JSON (UTF-8)");
      }
      const isRaw = isRawRequest(json);
      const result = v.safeParse(isRaw ? rawMessageSchema : structuredMessageSchema, json, { abortEarly: false });
      const errors = result.success ? [] : fieldErrors(result.issues);
      if (!errors.some((e) => e.field === "send_at")) errors.push(...sendAtErrors(json, deps.clock.now()));
      errors.push(...literalErrors(json, isRaw, deps.literals));
      if (!result.success || errors.length > 0) {
        return problem(c, 422, "Invalid message", "one or more fields are invalid", errors);
      }
      const prepared = isRaw
        ? prepareRaw(result.output as RawMessageBody)
        : await prepareStructured(result.output as StructuredMessageBody);
      const headerErrors = priorityHeaderErrors(deps.priorityHeader, result.output, prepared.body);
      if (headerErrors.length > 0) {
        return problem(c, 422, "Invalid message", "one or more fields are invalid", headerErrors);
      }
      if (prepared.recipients.length === 0) {
        return problem(c, 422, "Invalid message", "no recipients", [{
          field: "to",
          message: "at least one of to, cc, bcc",
        }]);
      }
      if (prepared.recipients.length > deps.maxRecipients) {
        const field = isRaw ? "rcpt_to" : "to";
        return problem(c, 422, "Too many recipients", `at most ${deps.maxRecipients} recipients per message`, [
          { field, message: `${prepared.recipients.length} recipients; the limit is ${deps.maxRecipients}` },
        ]);
      }
      if (!senderAllowed(c.get("principal"), prepared.mailFrom)) {
        return problem(
          c,
          403,
          "sender domain not allowed",
          `this key may send only from ${c.get("principal").domains.join(", ")}; got ${
            JSON.stringify(prepared.mailFrom)
          }`,
        );
      }
      if (prepared.body.byteLength > deps.maxMessageBytes) {
        return problem(
          c,
          413,
          "Message too large",
          `the message is ${prepared.body.byteLength} bytes; the limit is ${deps.maxMessageBytes}`,
        );
      }
      const options = result.output;
      const principal = c.get("principal");
      let accepted: Accepted;
      try {
        accepted = await deps.ingress.submit({
          mailFrom: prepared.mailFrom,
          recipients: prepared.recipients.map((address) => ({ address })),
          body: prepared.body,
          source: "http",
          submitter: principal.id === ADMIN_PRINCIPAL.id ? "admin" : "api-key",
          authUser: principal.id,
          senderDomains: principal.domains,
          tags: options.tags,
          metadata: options.metadata,
          lane: options.priority,
          submitterLane: principal.lane,
          scan: principal.scan ?? undefined,
          sendAt: options.send_at ? Math.max(Date.parse(options.send_at), deps.clock.now()) : undefined,
          requireTls: options.require_tls,
        });
      } catch (error) {
        if (error instanceof ContentRefused) {
          // The scanner's SMTP reply, as it would be given over SMTP; its id names the `rejected` events.
          if (error.temporary) c.header("Retry-After", "60");
          return c.json(
            {
              type: "about:blank",
              title: error.temporary
                ? "Content scanner asks to try again later"
                : "Message refused by a content scanner",
              status: error.temporary ? 503 : 422,
              detail: replyText(error.reply),
              id: error.id,
            },
            error.temporary ? 503 : 422,
            { "content-type": "application/problem+json" },
          );
        }
        if (error instanceof InsufficientStorage) {
          // RFC 4918 11.5: the server cannot store what is needed to complete the request.
          c.header("Retry-After", "60");
          return problem(
            c,
            507,
            "Insufficient storage",
            "this node's disk is full: nothing was stored; try again later",
          );
        }
        if (!(error instanceof SenderRefused)) throw error;
        // RELAY_SENDER_POLICY: the From header (the `from` field, or the From line of `raw`) is refused.
        return problem(c, 403, "sender domain not allowed", error.message, [{
          field: isRaw ? "raw" : "from",
          message: error.message,
        }]);
      }
      const answer: v.InferOutput<typeof sendResponseSchema> = {
        id: accepted.id,
        recipients: prepared.recipients.map((email) => ({
          email,
          status: accepted.suppressed.has(email) ? "suppressed" : accepted.held ? "held" : "queued",
        })),
      };
      return c.json(answer, 202);
    },
  );

  /** A message its sender domain hides from a domain-limited key is "not found" to it. */
  const visible = async (id: string, principal: AuthEnv["Variables"]["principal"]) => {
    const view = await deps.store.messageView(id);
    return view && senderAllowed(principal, view.message.mailFrom) ? view : undefined;
  };

  app.get(
    "/:id",
    describeRoute({
      tags: messageTags,
      summary: "Inspect a message",
      description: "The envelope, each recipient's state, attempts and last reply, and the message's events.",
      security: [{ bearer: ["read"] }],
      responses: {
        200: json("The message", messageViewSchema),
        ...problemResponses({
          401: "Missing or unknown bearer token",
          403: 'The token lacks the "read" scope',
          404: "No such message",
        }),
      },
    }),
    validator("param", messageIdParamSchema, paramHook),
    async (c) => {
      const id = c.req.valid("param").id;
      const view = await visible(id, c.get("principal"));
      if (!view) return problem(c, 404, "Not Found", `no message ${JSON.stringify(id)}`);
      const answer: v.InferOutput<typeof messageViewSchema> = {
        id: view.message.id,
        created_at: new Date(view.message.createdAt).toISOString(),
        mail_from: view.message.mailFrom,
        source: view.message.source,
        size: view.message.size,
        tags: view.message.tags ?? [],
        metadata: view.message.metadata ?? {},
        require_tls: view.message.tlsTag === "requiretls",
        recipients: view.recipients.map((r) => ({
          email: r.address,
          state: r.state,
          priority: r.lane,
          attempts: r.attempts,
          next_attempt_at: r.state === "queued" || r.state === "deferred" || r.state === "held"
            ? new Date(r.nextAttemptAt).toISOString()
            : null,
          last_reply: r.lastReply,
          attempt_log: attemptLog(view.events, r.address),
        })),
        events: view.events.map((e) => ({
          id: e.id,
          at: new Date(e.at).toISOString(),
          type: e.type,
          recipient: e.recipient,
          ...e.data,
        })),
      };
      return c.json(answer);
    },
  );

  app.delete(
    "/:id",
    describeRoute({
      tags: messageTags,
      summary: "Cancel a message",
      description:
        "Cancels the recipients still queued or deferred; those delivered, bounced or in flight are left as they are.",
      security: [{ bearer: ["send"] }],
      responses: {
        200: json("What was cancelled", cancelResultSchema),
        ...problemResponses({
          401: "Missing or unknown bearer token",
          403: 'The token lacks the "send" scope',
          404: "No such message",
        }),
      },
    }),
    validator("param", messageIdParamSchema, paramHook),
    async (c) => {
      const id = c.req.valid("param").id;
      if (!(await visible(id, c.get("principal")))) {
        return problem(c, 404, "Not Found", `no message ${JSON.stringify(id)}`);
      }
      const cancelled = await deps.store.control.cancel({ messageId: id });
      const answer: v.InferOutput<typeof cancelResultSchema> = { id, cancelled };
      return c.json(answer);
    },
  );

  return app;
}
