import { Hono } from "hono";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import * as v from "valibot";
import type { Ingress } from "../ingress/submit.ts";
import type { QueueStore } from "../queue/store.ts";
import { problem } from "./problem.ts";
import { fieldErrors } from "./validation.ts";
import {
  extractAddress,
  rawMessageSchema,
  structuredMessageSchema,
  type RawMessageBody,
  type StructuredMessageBody,
} from "./message-schema.ts";

export interface MessageRouteDeps {
  readonly ingress: Ingress;
  readonly store: QueueStore;
  readonly maxMessageBytes: number;
  readonly maxRecipients: number;
}

interface Prepared {
  readonly mailFrom: string;
  readonly recipients: string[];
  readonly body: Uint8Array;
}

/** JSON message text usually has bare LF; RFC 5322 wants CRLF. */
function toCrlf(text: string): Uint8Array {
  return new TextEncoder().encode(text.replace(/\r?\n/g, "\r\n"));
}

function prepareRaw(body: RawMessageBody): Prepared {
  return { mailFrom: body.mail_from, recipients: body.rcpt_to, body: toCrlf(body.raw) };
}

async function prepareStructured(body: StructuredMessageBody): Promise<Prepared> {
  const composer = new MailComposer({
    from: body.from,
    to: body.to,
    cc: body.cc,
    bcc: body.bcc,
    replyTo: body.reply_to,
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
    mailFrom: extractAddress(body.from),
    recipients: [...body.to, ...body.cc, ...body.bcc].map(extractAddress),
    body: new Uint8Array(built),
  };
}

export function messageRoutes(deps: MessageRouteDeps): Hono {
  const app = new Hono();

  app.post("/", async (c) => {
    let json: unknown;
    try {
      json = await c.req.json();
    } catch {
      return problem(c, 400, "Bad Request", "the body is not valid JSON");
    }
    const isRaw = typeof json === "object" && json !== null && "raw" in json;
    const result = v.safeParse(isRaw ? rawMessageSchema : structuredMessageSchema, json, { abortEarly: false });
    if (!result.success) {
      return problem(c, 422, "Invalid message", "one or more fields are invalid", fieldErrors(result.issues));
    }
    const prepared = isRaw
      ? prepareRaw(result.output as RawMessageBody)
      : await prepareStructured(result.output as StructuredMessageBody);
    if (prepared.recipients.length === 0) {
      return problem(c, 422, "Invalid message", "no recipients", [{ field: "to", message: "at least one of to, cc, bcc" }]);
    }
    if (prepared.recipients.length > deps.maxRecipients) {
      return problem(c, 422, "Too many recipients", `at most ${deps.maxRecipients} recipients per message`);
    }
    if (prepared.body.byteLength > deps.maxMessageBytes) {
      return problem(c, 413, "Message too large", `the message is ${prepared.body.byteLength} bytes; the limit is ${deps.maxMessageBytes}`);
    }
    const options = result.output;
    const id = await deps.ingress.submit({
      mailFrom: prepared.mailFrom,
      recipients: prepared.recipients.map((address) => ({ address })),
      body: prepared.body,
      source: "http",
      tags: options.tags,
      metadata: options.priority ? { ...options.metadata, priority: options.priority } : options.metadata,
      sendAt: options.send_at ? Date.parse(options.send_at) : undefined,
    });
    return c.json({ id, recipients: prepared.recipients.map((email) => ({ email, status: "queued" })) }, 202);
  });

  app.get("/:id", async (c) => {
    const view = await deps.store.messageView(c.req.param("id"));
    if (!view) return problem(c, 404, "Not Found", `no message ${JSON.stringify(c.req.param("id"))}`);
    return c.json({
      id: view.message.id,
      created_at: new Date(view.message.createdAt).toISOString(),
      mail_from: view.message.mailFrom,
      source: view.message.source,
      size: view.message.size,
      tags: view.message.tags ?? [],
      metadata: view.message.metadata ?? {},
      recipients: view.recipients.map((r) => ({
        email: r.address,
        state: r.state,
        attempts: r.attempts,
        next_attempt_at: r.state === "queued" || r.state === "deferred" ? new Date(r.nextAttemptAt).toISOString() : null,
        last_reply: r.lastReply,
      })),
      events: view.events.map((e) => ({ id: e.id, at: new Date(e.at).toISOString(), type: e.type, recipient: e.recipient, ...e.data })),
    });
  });

  app.delete("/:id", async (c) => {
    const id = c.req.param("id");
    const view = await deps.store.messageView(id);
    if (!view) return problem(c, 404, "Not Found", `no message ${JSON.stringify(id)}`);
    const cancelled = await deps.store.cancel(id);
    return c.json({ id, cancelled });
  });

  return app;
}
