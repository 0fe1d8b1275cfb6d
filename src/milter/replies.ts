/**
 * The milter's replies read into plain values, each field checked
 * (formats from milter8.c milter8_event and milter8_connect).
 */
import { MacroStage, Reply } from "./constants.ts";
import type { Packet } from "./decoder.ts";
import { describeCode } from "./decoder.ts";
import { MilterProtocolError } from "./errors.ts";
import { FieldReader } from "./fields.ts";

/** The milter's answer to SMFIC_OPTNEG. */
export interface Negotiation {
  readonly version: number;
  /** The actions (SMFIF_*) the milter may ask for. */
  readonly actions: number;
  /** The protocol flags (SMFIP_*) the milter wants. */
  readonly protocol: number;
  /** Macro names the milter wants per stage (SMFIM_*), replacing the MTA's own choice. */
  readonly macroLists: ReadonlyMap<number, readonly string[]>;
}

export function parseNegotiation(packet: Packet): Negotiation {
  if (packet.code !== Reply.OPTNEG) {
    throw new MilterProtocolError(`negotiation: expected 'O', got ${describeCode(packet.code)}`);
  }
  const reader = new FieldReader(packet.data, "negotiation");
  const version = reader.uint32();
  const actions = reader.uint32();
  const protocol = reader.uint32();
  const macroLists = new Map<number, string[]>();
  const stages = new Set<number>(Object.values(MacroStage));
  // Optional lists follow: a stage number and a space-separated list of names (milter8.c, "secondary negotiations").
  while (reader.remaining > 0) {
    const stage = reader.uint32();
    const names = reader.string().split(/[\s,]+/).filter((name) => name !== "");
    if (stages.has(stage)) macroLists.set(stage, names);
  }
  return { version, actions, protocol, macroLists };
}

/** An SMTP reply a milter chose (SMFIR_REPLYCODE), e.g. "550 5.7.1 Spam"; may span lines. */
export interface ReplyText {
  /** The three-digit code, 4xx or 5xx. */
  readonly code: number;
  /** The whole reply as sent, with its code, lines joined by CRLF. */
  readonly text: string;
}

/** A header field value here is what follows the colon, its line breaks as CRLF. */
export type MilterReply =
  | { readonly kind: "accept" }
  | { readonly kind: "continue" }
  | { readonly kind: "discard" }
  | { readonly kind: "reject" }
  | { readonly kind: "tempfail" }
  | { readonly kind: "progress" }
  | { readonly kind: "skip" }
  | { readonly kind: "replycode"; readonly reply: ReplyText }
  | { readonly kind: "quarantine"; readonly reason: string }
  | { readonly kind: "add-header"; readonly name: string; readonly value: string }
  | { readonly kind: "insert-header"; readonly index: number; readonly name: string; readonly value: string }
  | { readonly kind: "change-header"; readonly index: number; readonly name: string; readonly value: string }
  | { readonly kind: "change-sender"; readonly address: string; readonly args?: string }
  | { readonly kind: "add-recipient"; readonly address: string; readonly args?: string }
  | { readonly kind: "delete-recipient"; readonly address: string }
  | { readonly kind: "replace-body"; readonly chunk: Uint8Array };

const NO_DATA: Readonly<Record<number, MilterReply["kind"]>> = {
  [Reply.ACCEPT]: "accept",
  [Reply.CONTINUE]: "continue",
  [Reply.DISCARD]: "discard",
  [Reply.REJECT]: "reject",
  [Reply.TEMPFAIL]: "tempfail",
  [Reply.PROGRESS]: "progress",
  [Reply.SKIP]: "skip",
};

/**
 * One reply packet as a value. `leadingSpace` is whether SMFIP_HDR_LEADSPC
 * was negotiated: without it the value comes without the space that
 * follows the colon, and one is put back (milter8.c MILTER8_HDR_SPACE).
 */
export function parseReply(packet: Packet, leadingSpace: boolean): MilterReply {
  const what = `reply ${describeCode(packet.code)}`;
  const reader = new FieldReader(packet.data, what);
  const bare = NO_DATA[packet.code];
  if (bare) {
    reader.end();
    return { kind: bare } as MilterReply;
  }
  const header = () => {
    const name = headerName(reader.string(), what);
    const value = headerValue(reader.string(), leadingSpace, what);
    return { name, value };
  };
  const optionalArgs = () => (reader.remaining > 0 ? reader.string() : undefined);
  let reply: MilterReply;
  switch (packet.code) {
    case Reply.REPLYCODE:
      reply = { kind: "replycode", reply: replyText(reader.string(), what) };
      break;
    case Reply.QUARANTINE:
      reply = { kind: "quarantine", reason: reader.string() };
      break;
    case Reply.ADDHEADER:
      reply = { kind: "add-header", ...header() };
      break;
    case Reply.INSHEADER: {
      const index = reader.uint32();
      reply = { kind: "insert-header", index, ...header() };
      break;
    }
    case Reply.CHGHEADER: {
      // Index 1 is the first field of that name; Sendmail reads 0 as 1 too (milter8.c).
      const index = Math.max(1, reader.uint32());
      reply = { kind: "change-header", index, ...header() };
      break;
    }
    case Reply.CHGFROM: {
      const address = envelopeAddress(reader.string(), what);
      reply = { kind: "change-sender", address, args: optionalArgs() };
      break;
    }
    case Reply.ADDRCPT:
      reply = { kind: "add-recipient", address: envelopeAddress(reader.string(), what) };
      break;
    case Reply.ADDRCPT_PAR: {
      const address = envelopeAddress(reader.string(), what);
      reply = { kind: "add-recipient", address, args: optionalArgs() };
      break;
    }
    case Reply.DELRCPT:
      reply = { kind: "delete-recipient", address: envelopeAddress(reader.string(), what) };
      break;
    case Reply.REPLBODY:
      reply = { kind: "replace-body", chunk: reader.rest() };
      break;
    default:
      throw new MilterProtocolError(`${what} is not a reply to an event`);
  }
  reader.end();
  if ("args" in reply && reply.args === undefined) delete (reply as { args?: string }).args;
  return reply;
}

/**
 * "4xx"/"5xx", a space or hyphen, and an enhanced code of the same class if
 * any (milter8.c SMFIR_REPLYCODE). Sendmail uses the text as a format
 * string, so milters double a '%': like Postfix, "%%" is read as "%" and a
 * lone '%' is dropped.
 */
function replyText(sent: string, what: string): ReplyText {
  const text = sent.replace(/%(%?)/g, "$1");
  const lines = text.split(/\r?\n/);
  for (const line of lines) {
    const match = /^([45])\d\d([ -]|$)/.exec(line);
    if (!match || (/^\d$/.test(line[4] ?? "") && line[4] !== match[1])) {
      throw new MilterProtocolError(`${what}: not a 4xx or 5xx SMTP reply: ${JSON.stringify(line)}`);
    }
  }
  return { code: Number(text.slice(0, 3)), text: lines.join("\r\n") };
}

/** A field name: printable ASCII without colon (RFC 5322 2.2 ftext). */
function headerName(name: string, what: string): string {
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
    throw new MilterProtocolError(`${what}: not a header field name: ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * A value's lines are separated by LF (Sendmail's form; CRLF is taken too),
 * each continuation starting with SP or HTAB; any other CR or LF would end
 * the field early and is refused.
 */
function headerValue(value: string, leadingSpace: boolean, what: string): string {
  const lines = value.split(/\r?\n/);
  if (lines.some((line, i) => /[\r\n]/.test(line) || (i > 0 && !/^[ \t]/.test(line)))) {
    throw new MilterProtocolError(`${what}: a header value breaks a line without folding: ${JSON.stringify(value)}`);
  }
  const joined = lines.join("\r\n");
  return leadingSpace || joined === "" ? joined : ` ${joined}`;
}

/** An envelope address as the milter wrote it (with or without <>); no controls or spaces. */
function envelopeAddress(address: string, what: string): string {
  if (address === "" || /[\x00-\x20\x7f]/.test(address)) {
    throw new MilterProtocolError(`${what}: not an envelope address: ${JSON.stringify(address)}`);
  }
  return address;
}
