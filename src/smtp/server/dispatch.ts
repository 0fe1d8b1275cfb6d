import { type Reply, reply } from "../../core/reply.ts";
import type { SecureContext } from "../../platform/net.ts";
import { parseCommand } from "../protocol/command.ts";
import { DataReader } from "../protocol/data-reader.ts";
import type { LineEvent } from "../protocol/line-reader.ts";
import { auth, saslAbort, saslResponse } from "./auth.ts";
import { bdat } from "./bdat.ts";
import type { Body } from "./body.ts";
import * as cmd from "./commands.ts";

/** What the session does with one command line. */
export type Action =
  | { readonly kind: "reply"; readonly reply: Reply }
  /** Send intro (354 for DATA), then hand raw input to the body until it ends. */
  | { readonly kind: "body"; readonly intro?: Reply; readonly body: Body }
  | { readonly kind: "starttls"; readonly context: SecureContext }
  | { readonly kind: "quit" };

/** Commands that move a transaction forward; any other resets nothing and counts as idle talk. */
export const PROGRESS = new Set(["MAIL", "RCPT", "DATA", "BDAT"]);

/** Octets extensions add to the longest MAIL command: " REQUIRETLS" (RFC 8689 2 item 5). */
const MAIL_EXTENSION_OCTETS = 11;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const answer = (r: Reply): Action => ({ kind: "reply", reply: r });

/**
 * A framed line as a command, or its refusal: over-long lines (RFC 5321
 * 4.5.3.1.4; AUTH may be longer, RFC 4954 4, and MAIL, RFC 8689 2), bare CR or LF (never a line
 * end: SMTP smuggling), NUL, and invalid UTF-8.
 */
export function frame(ctx: cmd.CommandContext, event: LineEvent): { verb: string; args: string } | { reply: Reply } {
  if (event.kind === "too-long") return { reply: reply(500, "5.5.2", "Line too long") };
  if (event.kind === "bare-eol") return { reply: reply(500, "5.5.2", "Bare CR or LF in command; lines end with CRLF") };
  if (event.bytes.includes(0)) return { reply: reply(500, "5.5.2", "NUL character in command") };
  let line: string;
  try {
    line = utf8.decode(event.bytes);
  } catch {
    return { reply: reply(500, "5.5.2", "Invalid UTF-8 in command") };
  }
  const { verb, args } = parseCommand(line);
  const limit = ctx.options.maxLineLength + (verb === "MAIL" ? MAIL_EXTENSION_OCTETS : 0);
  if (verb !== "AUTH" && event.bytes.length + 2 > limit) return { reply: reply(500, "5.5.2", "Line too long") };
  return { verb, args };
}

export async function command(ctx: cmd.CommandContext, verb: string, args: string): Promise<Action> {
  switch (verb) {
    case "EHLO":
      return answer(cmd.ehlo(ctx, args));
    case "HELO":
      return answer(cmd.helo(ctx, args));
    case "MAIL":
      return answer(await cmd.mail(ctx, args));
    case "RCPT":
      return answer(await cmd.rcpt(ctx, args));
    case "DATA": {
      const refusal = cmd.dataAllowed(ctx, args);
      if (refusal) return answer(refusal);
      const memory = await cmd.reserveMessageMemory(ctx);
      if (memory && "code" in memory) return answer(memory);
      const reader = new DataReader(ctx.options.maxMessageBytes, ctx.options.maxTextLineLength, memory);
      const body: Body = {
        push: (chunk) => reader.push(chunk),
        finish: () => cmd.finishData(ctx, reader.result()).finally(() => cmd.releaseMessageMemory(ctx)),
      };
      return { kind: "body", intro: reply(354, undefined, "End data with <CR><LF>.<CR><LF>"), body };
    }
    case "BDAT": {
      const r = await bdat(ctx, args);
      return "finish" in r ? { kind: "body", body: r } : answer(r);
    }
    case "AUTH":
      return answer(await auth(ctx, args));
    case "STARTTLS": {
      const check = cmd.startTlsAllowed(ctx, args);
      return "context" in check ? { kind: "starttls", context: check.context } : answer(check);
    }
    case "QUIT":
      return { kind: "quit" };
    default: {
      const r = cmd.simple(ctx, verb, args);
      return r ? answer(r) : answer(reply(500, "5.5.1", "Command unrecognized"));
    }
  }
}

/** A line inside an AUTH exchange: a SASL response (RFC 4954 4), at most 12288 octets. */
export async function sasl(ctx: cmd.CommandContext, event: LineEvent): Promise<Action> {
  if (event.kind !== "line") return answer(saslAbort(ctx, event.kind === "too-long" ? "too-long" : "bad"));
  let line: string;
  try {
    line = utf8.decode(event.bytes);
  } catch {
    return answer(saslAbort(ctx, "bad"));
  }
  return answer(await saslResponse(ctx, line));
}
