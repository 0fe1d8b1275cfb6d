import type { Mailbox } from "../../core/address.ts";
import { type Reply, reply } from "../../core/reply.ts";
import { parsePath, type PathResult } from "./path.ts";
import { type MailParams, mailParams, type RcptParams, rcptParams, splitParams } from "./params.ts";

/** A command line split into its verb (upper-cased) and arguments (RFC 5321 4.1.1). */
export interface Command {
  readonly verb: string;
  readonly args: string;
}

export function parseCommand(line: string): Command {
  const space = line.indexOf(" ");
  if (space < 0) return { verb: line.toUpperCase(), args: "" };
  return { verb: line.slice(0, space).toUpperCase(), args: line.slice(space + 1) };
}

export type Parsed<T> = ({ ok: true } & T) | { ok: false; reply: Reply };

const syntax = (enhanced: string, text: string): { ok: false; reply: Reply } => ({
  ok: false,
  reply: reply(501, enhanced, text),
});

/** Whether the parameters ask for SMTPUTF8, so the path may hold UTF-8 (RFC 6531 3.4). */
function wantsUtf8(params: string): boolean {
  return /(?:^| )smtputf8(?:[ =]|$)/i.test(params);
}

/** RFC 6531 3.5: a non-ASCII address in a transaction without SMTPUTF8. */
const NON_ASCII_REFUSED = (what: string): { ok: false; reply: Reply } => ({
  ok: false,
  reply: reply(553, "5.6.7", `Non-ASCII ${what} address not permitted without the SMTPUTF8 parameter on MAIL`),
});

/**
 * "FROM:<reverse-path> [params]" (RFC 5321 4.1.1.2). A space after the colon
 * is tolerated, as most servers do; the angle brackets are required. The path
 * is found first, then its own parameters say whether it may hold UTF-8 (a
 * ">" in a later parameter value must not confuse this).
 */
export function parseMailFrom(args: string): Parsed<{ from: Mailbox | null; params: MailParams }> {
  const m = /^FROM: *(.*)$/i.exec(args);
  if (!m) return syntax("5.5.2", "Syntax: MAIL FROM:<address> [parameters]");
  const path = parsePath(m[1]!, { allowNull: true });
  if (!path.ok) return syntax("5.1.7", path.error);
  const utf8 = wantsUtf8(path.rest);
  if (path.utf8 && !utf8) return NON_ASCII_REFUSED("sender");
  const raw = splitParams(path.rest, utf8);
  if (!raw.ok) return syntax("5.5.4", raw.error);
  const params = mailParams(raw.params);
  if (!params.ok) return { ok: false, reply: reply(params.code, "5.5.4", params.error) };
  return { ok: true, from: path.mailbox, params: params.params };
}

/**
 * "TO:<forward-path> [params]" (RFC 5321 4.1.1.3). "<Postmaster>" without a
 * domain must be accepted (4.5.1); it becomes postmaster@<localDomain>,
 * whatever that host name looks like.
 */
export function parseRcptTo(
  args: string,
  utf8: boolean,
  localDomain: string,
): Parsed<{ to: Mailbox; params: RcptParams }> {
  const m = /^TO: *(.*)$/i.exec(args);
  if (!m) return syntax("5.5.2", "Syntax: RCPT TO:<address> [parameters]");
  const text = m[1]!;
  const postmaster = /^<postmaster>(?= |$)/i.exec(text);
  const path: PathResult = postmaster
    ? {
      ok: true,
      mailbox: { local: "postmaster", domain: localDomain },
      rest: text.slice(postmaster[0].length),
      utf8: false,
    }
    : parsePath(text, { allowNull: false });
  if (!path.ok || !path.mailbox) return syntax("5.1.3", path.ok ? "a recipient is required" : path.error);
  if (path.utf8 && !utf8) return NON_ASCII_REFUSED("recipient");
  const raw = splitParams(path.rest, utf8);
  if (!raw.ok) return syntax("5.5.4", raw.error);
  const params = rcptParams(raw.params);
  if (!params.ok) return { ok: false, reply: reply(params.code, "5.5.4", params.error) };
  return { ok: true, to: path.mailbox, params: params.params };
}
