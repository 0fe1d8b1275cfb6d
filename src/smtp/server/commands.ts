import type { Mailbox } from "../../core/address.ts";
import { isValidHeloName } from "../protocol/helo-name.ts";
import { type Reply, reply } from "../../core/reply.ts";
import { parseMailFrom, parseRcptTo } from "../protocol/command.ts";
import type { DataResult } from "../protocol/data-reader.ts";
import type { MessageBuffer } from "../protocol/message-buffer.ts";
import type { MailParams, RcptParams } from "../protocol/params.ts";
import { newId } from "../../core/id.ts";
import type { Reservation } from "../../core/memory-budget.ts";
import type { SecureContext, Socket } from "../../platform/net.ts";
import type { Envelope, ResolvedOptions, SessionInfo, SmtpServerHooks } from "./types.ts";

/** One mail transaction: MAIL, then RCPTs, then DATA (RFC 5321 3.3). */
export interface Transaction {
  readonly from: Mailbox | null;
  readonly params: MailParams;
  readonly recipients: { mailbox: Mailbox; params: RcptParams }[];
  /** SMTPUTF8 was asked at MAIL, so RCPT paths may hold UTF-8 (RFC 6531). */
  readonly utf8: boolean;
  /** The BDAT chunks so far (RFC 3030): DATA may no longer be used. */
  chunks?: MessageBuffer;
}

/** An AUTH exchange waiting for the client's next response (RFC 4954 4). */
export interface SaslState {
  readonly mechanism: "PLAIN" | "LOGIN";
  /** LOGIN: the username, once given. */
  username?: string;
}

export interface SessionState {
  greeted: boolean;
  tx?: Transaction;
  sasl?: SaslState;
  /** Memory for the message being read (SmtpServerOptions.messageMemory), from its DATA or first BDAT until its reply. */
  memory?: Reservation;
}

/** What a command handler needs from its session. */
export interface CommandContext {
  readonly info: SessionInfo;
  readonly options: ResolvedOptions;
  readonly hooks: SmtpServerHooks;
  readonly state: SessionState;
  /** STARTTLS may be offered now (a certificate exists and the session is plain). */
  canStartTls(): boolean;
  /** Run a hook; undefined means it threw (already logged by the caller's policy: not shown). */
  call<T>(fn: () => Promise<T>): Promise<{ value: T } | undefined>;
}

export function newSessionInfo(socket: Socket): SessionInfo {
  return {
    id: newId(),
    remoteAddress: socket.remoteAddress ?? "",
    remotePort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? "",
    localPort: socket.localPort ?? 0,
    secure: false,
  };
}

/** Run a hook; undefined when it threw. The error text is never sent: it may hold secrets. */
export async function callHook<T>(fn: () => Promise<T>): Promise<{ value: T } | undefined> {
  try {
    return { value: await fn() };
  } catch {
    return undefined;
  }
}

export const HOOK_FAILED = reply(451, "4.3.0", "Internal error; try again later");

export function envelopeOf(tx: Transaction): Envelope {
  return { mailFrom: tx.from, mailParams: { ...tx.params }, recipients: tx.recipients.map((r) => ({ ...r })) };
}

/** EHLO (RFC 5321 4.1.1.1) with the extensions this server implements. */
export function ehlo(ctx: CommandContext, args: string): Reply {
  const name = args.trim();
  if (!isValidHeloName(name)) return reply(501, "5.5.4", "Syntax: EHLO domain-or-address-literal");
  greet(ctx, name);
  const lines = [`${ctx.options.hostname} greets ${name}`, "PIPELINING", `SIZE ${ctx.options.maxMessageBytes}`];
  lines.push("8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN");
  if (ctx.canStartTls()) lines.push("STARTTLS");
  // RFC 4954 4 and RFC 8314 3: passwords travel only inside TLS.
  if (ctx.info.secure && ctx.hooks.onAuth) lines.push("AUTH PLAIN LOGIN");
  // RFC 8689 2: REQUIRETLS is advertised after TLS is negotiated, and only then may a client use it.
  if (ctx.info.secure) lines.push("REQUIRETLS");
  // RFC 2034 3: no enhanced code on the EHLO/HELO reply.
  return reply(250, undefined, ...lines);
}

export function helo(ctx: CommandContext, args: string): Reply {
  const name = args.trim();
  if (!isValidHeloName(name)) return reply(501, "5.5.4", "Syntax: HELO domain");
  greet(ctx, name);
  return reply(250, undefined, ctx.options.hostname);
}

/** EHLO/HELO also reset any transaction (RFC 5321 4.1.4). */
function greet(ctx: CommandContext, name: string): void {
  ctx.info.heloName = name;
  ctx.state.greeted = true;
  ctx.state.tx = undefined;
}

export async function mail(ctx: CommandContext, args: string): Promise<Reply> {
  if (!ctx.state.greeted) return reply(503, "5.5.1", "Send EHLO or HELO first");
  if (ctx.state.tx) return reply(503, "5.5.1", "Nested MAIL command");
  const parsed = parseMailFrom(args);
  if (!parsed.ok) return parsed.reply;
  const { from, params } = parsed;
  // RFC 8689 2: REQUIRETLS "MUST only be specified" in a session that employs TLS; 5.7.10 is "Encryption needed" (4.2.1).
  if (params.requireTls && !ctx.info.secure) {
    return reply(530, "5.7.10", "REQUIRETLS needs a TLS session; send STARTTLS first");
  }
  if (params.size !== undefined && params.size > ctx.options.maxMessageBytes) {
    return tooBig(ctx);
  }
  const onMailFrom = ctx.hooks.onMailFrom;
  if (onMailFrom) {
    const result = await ctx.call(() => onMailFrom.call(ctx.hooks, ctx.info, from, params));
    if (!result) return HOOK_FAILED;
    if (result.value && result.value.code >= 400) return result.value;
    ctx.state.tx = { from, params, recipients: [], utf8: params.smtputf8 === true };
    return result.value ?? reply(250, "2.1.0", "Sender OK");
  }
  ctx.state.tx = { from, params, recipients: [], utf8: params.smtputf8 === true };
  return reply(250, "2.1.0", "Sender OK");
}

export async function rcpt(ctx: CommandContext, args: string): Promise<Reply> {
  const tx = ctx.state.tx;
  if (!tx) return reply(503, "5.5.1", "Send MAIL first");
  const parsed = parseRcptTo(args, tx.utf8, ctx.options.hostname.toLowerCase());
  if (!parsed.ok) return parsed.reply;
  // RFC 5321 4.5.3.1.8: 452 for too many recipients; the client sends the rest later.
  if (tx.recipients.length >= ctx.options.maxRecipients) return reply(452, "4.5.3", "Too many recipients");
  const result = await ctx.call(() => ctx.hooks.onRcptTo(ctx.info, parsed.to, parsed.params, envelopeOf(tx)));
  if (!result) return HOOK_FAILED;
  if (result.value && result.value.code >= 400) return result.value;
  if (ctx.state.tx !== tx) return reply(503, "5.5.1", "Transaction was reset");
  tx.recipients.push({ mailbox: parsed.to, params: parsed.params });
  return result.value ?? reply(250, "2.1.5", "Recipient OK");
}

/** Checks before "354"; undefined means go ahead. */
export function dataAllowed(ctx: CommandContext, args: string): Reply | undefined {
  if (args !== "") return reply(501, "5.5.4", "DATA takes no arguments");
  if (!ctx.state.tx) return reply(503, "5.5.1", "Send MAIL first");
  if (ctx.state.tx.recipients.length === 0) return reply(503, "5.5.1", "Send RCPT first");
  // RFC 3030 2: DATA after BDAT in one transaction is a sequence error.
  if (ctx.state.tx.chunks) return reply(503, "5.5.1", "DATA not allowed after BDAT; send BDAT LAST or RSET");
  return undefined;
}

/** The reply once the body has ended; the transaction ends whatever it is (RFC 5321 4.1.1.4). */
export async function finishData(ctx: CommandContext, result: Omit<DataResult, "size">): Promise<Reply> {
  const tx = ctx.state.tx;
  ctx.state.tx = undefined;
  if (!tx) return reply(503, "5.5.1", "No transaction");
  if (result.bareEol) return reply(550, "5.6.11", "Bare CR or LF in message; lines must end with CRLF");
  if (result.overflow) {
    return tooBig(ctx);
  }
  if (result.starved) return noMemory(ctx);
  // RFC 5322 2.1.1 / RFC 5321 4.5.3.1.6: lines of at most 998 octets plus CRLF.
  if (result.longLine) {
    return reply(500, "5.5.2", `Line too long; message lines are limited to ${ctx.options.maxTextLineLength} octets`);
  }
  const outcome = await ctx.call(() => ctx.hooks.onData(ctx.info, envelopeOf(tx), result.message));
  return outcome ? outcome.value : HOOK_FAILED;
}

/**
 * What a message that declared no SIZE reserves first: most messages are
 * small, and reserving the largest for each would let only a few sessions
 * at a time send (and share a commit). It grows as the message does.
 */
const UNDECLARED_SIZE_FIRST = 256 * 1024;

/**
 * Memory for the message about to be read, when messages are counted
 * (SmtpServerOptions.messageMemory): what MAIL's SIZE declared (RFC 1870, an
 * estimate), else a little; a message that outgrows it asks for more as it
 * arrives, and is refused 452 if none is free then. Declaring SIZE is what
 * makes sure the memory is there before the 354. Waits its turn; the
 * refusal when none is free in time.
 */
export async function reserveMessageMemory(ctx: CommandContext): Promise<Reservation | Reply | undefined> {
  const budget = ctx.options.messageMemory;
  if (!budget || ctx.state.memory) return ctx.state.memory;
  const max = ctx.options.maxMessageBytes;
  const reservation = await budget.reserve(
    Math.min(ctx.state.tx?.params.size ?? UNDECLARED_SIZE_FIRST, max),
    ctx.options.messageMemoryWaitMs,
  );
  if (!reservation) return noMemory(ctx);
  ctx.state.memory = reservation;
  return reservation;
}

export function releaseMessageMemory(ctx: CommandContext): void {
  ctx.state.memory?.release();
  ctx.state.memory = undefined;
}

/** RFC 5321 4.2.2 / RFC 3463 X.3.1: a temporary shortage, the client tries again later. */
export const noMemory = (ctx: CommandContext): Reply =>
  reply(452, "4.3.1", `${ctx.options.hostname} Insufficient system resources for the message now, try again later`);

export const tooBig = (ctx: CommandContext): Reply =>
  reply(552, "5.3.4", `Message size exceeds fixed maximum message size of ${ctx.options.maxMessageBytes} bytes`);

/** STARTTLS checks (RFC 3207 4): the certificate to use, or the refusal. */
export function startTlsAllowed(ctx: CommandContext, args: string): Reply | { context: SecureContext } {
  if (args !== "") return reply(501, "5.5.4", "STARTTLS takes no arguments");
  if (ctx.info.secure) return reply(503, "5.5.1", "TLS already active");
  const context = ctx.options.tls?.();
  return context ? { context } : reply(454, "4.7.0", "TLS not available");
}

/** Commands that need no I/O beyond their reply. */
export function simple(ctx: CommandContext, verb: string, args: string): Reply | undefined {
  switch (verb) {
    case "RSET":
      if (args !== "") return reply(501, "5.5.4", "RSET takes no arguments");
      ctx.state.tx = undefined;
      return reply(250, "2.0.0", "OK");
    case "NOOP":
      return reply(250, "2.0.0", "OK");
    case "VRFY":
      // RFC 5321 3.5.3: 252 when the server will not verify.
      return reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
    case "EXPN":
      return reply(502, "5.5.1", "EXPN not supported");
    case "HELP":
      return reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
    default:
      return undefined;
  }
}
