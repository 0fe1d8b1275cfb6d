/**
 * The MTA side of one milter connection (Sendmail milter protocol version
 * 6, as Postfix's milter8.c speaks it): negotiate, then the connection's
 * CONNECT and HELO, then per message MAIL, RCPT, DATA, headers, EOH, body
 * chunks and end of message, each after its macros. It returns verdicts and
 * modifications as data and decides nothing: what a verdict means, and
 * what to do when the milter fails (a MilterError), is the caller's policy.
 * One call at a time: each awaits its answers before the next may start.
 */
import type { Duplex } from "node:stream";
import { systemClock, type TimerClock } from "../core/clock.ts";
import { PacketChannel } from "./channel.ts";
import {
  bareCommand,
  bodyCommand,
  connectCommand,
  type ConnectInfo,
  envelopeCommand,
  headerCommand,
  heloCommand,
  macroCommand,
  optnegCommand,
} from "./commands.ts";
import {
  ALL_ACTIONS,
  Command,
  MacroStage,
  MILTER_CHUNK_SIZE,
  MILTER_VERSION,
  OFFERED_PROTOCOL,
  Protocol,
} from "./constants.ts";
import { describeCode, MAX_PACKET_LENGTH } from "./decoder.ts";
import { checkAction, EditCollector, type MilterModification } from "./edits.ts";
import { MilterError, MilterProtocolError } from "./errors.ts";
import { chosenMacros, type Macros, type StageMacros } from "./macros.ts";
import { milterView } from "./message-view.ts";
import { type MilterReply, type Negotiation, parseNegotiation, parseReply, type ReplyText } from "./replies.ts";

export interface MilterTimeouts {
  /** For each answer, negotiation included (Postfix milter_command_timeout: 30 s). */
  readonly commandMs: number;
  /** For a whole message, MAIL to end of message (Postfix milter_content_timeout: 300 s). */
  readonly messageMs: number;
}

export const DEFAULT_MILTER_TIMEOUTS: MilterTimeouts = { commandMs: 30_000, messageMs: 300_000 };

export interface MilterSessionOptions {
  readonly timeouts?: Partial<MilterTimeouts>;
  /** The actions offered (SMFIF_*); every one by default. */
  readonly actions?: number;
  /** The protocol flags offered (SMFIP_*); OFFERED_PROTOCOL by default. */
  readonly protocol?: number;
  /** The most bytes of modifications taken for one message (a replaced body included). */
  readonly maxEditBytes?: number;
  readonly clock?: TimerClock;
}

export type MilterVerdict =
  | { readonly kind: "continue" | "accept" | "discard" | "reject" | "tempfail" }
  | { readonly kind: "replycode"; readonly reply: ReplyText };

/** A verdict that ends a message: never "continue". */
export type MilterFinalVerdict = Exclude<MilterVerdict, { kind: "continue" }>;

export type MilterStep = "connect" | "helo" | "mail" | "rcpt" | "data" | "header" | "eoh" | "body" | "eom";

export interface MilterAddress {
  /** The address without angle brackets ("" for the null sender). */
  readonly address: string;
  /** ESMTP parameters, e.g. "SIZE=1000". */
  readonly args?: readonly string[];
}

export interface MilterMessage {
  readonly sender: MilterAddress;
  readonly recipients: readonly MilterAddress[];
  /** The whole message, header section and body, CRLF line ends. */
  readonly content: Uint8Array;
  readonly macros?: StageMacros;
}

export interface MilterMessageResult {
  readonly verdict: MilterFinalVerdict;
  /** The step that gave the verdict ("eom" when the milter saw the whole message). */
  readonly step: MilterStep;
  /** Why the milter asked to hold the message (SMFIR_QUARANTINE), if it did. */
  readonly quarantine?: string;
  /** Recipients the milter refused at RCPT while the message went on for the others. */
  readonly refusedRecipients: readonly { readonly address: string; readonly verdict: MilterFinalVerdict }[];
  /** What the milter asked to change, in its order; empty unless the verdict came at "eom". */
  readonly modifications: readonly MilterModification[];
}

interface EventSpec {
  readonly step: MilterStep;
  readonly code: number;
  /** The command; a bare one (no data) when absent. */
  readonly packet?: Uint8Array;
  readonly macros?: Macros;
  readonly macroStage: number;
  /** The SMFIP_NO* flag that says not to send it. */
  readonly skipFlag: number;
  /** The SMFIP_NR_* flag that says the milter will not answer it. */
  readonly noReplyFlag: number;
}

const CONTINUE = { kind: "continue" } as const;

export class MilterSession {
  readonly #channel: PacketChannel;
  readonly #timeouts: MilterTimeouts;
  readonly #actions: number;
  readonly #protocol: number;
  readonly #maxEditBytes: number;
  readonly #clock: TimerClock;
  #negotiation: Negotiation | undefined;
  /** A verdict for the whole connection, given at CONNECT or HELO: no later event is sent. */
  #connectionVerdict: { verdict: MilterFinalVerdict; step: MilterStep } | undefined;
  #quarantine: string | undefined;

  constructor(stream: Duplex, options: MilterSessionOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#timeouts = { ...DEFAULT_MILTER_TIMEOUTS, ...options.timeouts };
    this.#actions = options.actions ?? ALL_ACTIONS;
    this.#protocol = options.protocol ?? OFFERED_PROTOCOL;
    this.#maxEditBytes = options.maxEditBytes ?? 64 * 1024 * 1024;
    this.#channel = new PacketChannel(stream, this.#clock, MAX_PACKET_LENGTH);
  }

  /** Whether the connection still stands: false once it failed or was closed, for good. */
  get usable(): boolean {
    return this.#channel.failure === undefined;
  }

  /** What negotiation settled: the milter's version, actions, and the protocol flags in force. */
  get negotiated(): Negotiation | undefined {
    return this.#negotiation;
  }

  /** Offer version 6, our actions and protocol flags; take what the milter answers, within limits. */
  async negotiate(): Promise<Negotiation> {
    const step = "negotiation";
    const deadline = this.#clock.now() + this.#timeouts.commandMs;
    await this.#write(optnegCommand(MILTER_VERSION, this.#actions, this.#protocol), step, deadline);
    const answer = await this.#guard(async () => {
      const packet = await this.#channel.next(step, this.#timeouts.commandMs);
      const answer = parseNegotiation(packet);
      // A newer version or an action we did not offer cannot be honoured (milter8.c milter8_connect).
      if (answer.version < 2 || answer.version > MILTER_VERSION) {
        throw new MilterProtocolError(`negotiation: the milter speaks version ${answer.version}, not 2 to 6`);
      }
      if ((answer.actions & this.#actions) !== answer.actions) {
        throw new MilterProtocolError(
          `negotiation: the milter asks for actions 0x${answer.actions.toString(16)} beyond the offered 0x${
            this.#actions.toString(16)
          }`,
        );
      }
      return answer;
    });
    // Flags we did not offer are ignored; a milter older than version 4 knows no DATA event (milter8.c).
    let protocol = answer.protocol & this.#protocol;
    if (answer.version < 4) protocol |= Protocol.NODATA;
    this.#negotiation = { ...answer, protocol };
    return this.#negotiation;
  }

  /** SMFIC_CONNECT: who the client is. */
  connect(info: ConnectInfo, macros?: Macros): Promise<MilterVerdict> {
    return this.#connectionEvent({
      step: "connect",
      code: Command.CONNECT,
      packet: connectCommand(info),
      macros,
      macroStage: MacroStage.CONNECT,
      skipFlag: Protocol.NOCONNECT,
      noReplyFlag: Protocol.NR_CONN,
    });
  }

  /** SMFIC_HELO: the name the client gave (for HTTP, what the caller chooses to show). */
  helo(name: string, macros?: Macros): Promise<MilterVerdict> {
    return this.#connectionEvent({
      step: "helo",
      code: Command.HELO,
      packet: heloCommand(name),
      macros,
      macroStage: MacroStage.HELO,
      skipFlag: Protocol.NOHELO,
      noReplyFlag: Protocol.NR_HELO,
    });
  }

  /**
   * One message, MAIL to end of message. A final verdict before the end
   * (accept, discard, reject, tempfail, a reply code) stops it there and
   * the milter is sent ABORT, ready for the next message.
   */
  async message(message: MilterMessage): Promise<MilterMessageResult> {
    if (message.recipients.length === 0) throw new RangeError("a message for a milter needs a recipient");
    const negotiation = this.#requireNegotiation();
    this.#quarantine = undefined;
    if (this.#connectionVerdict) return this.#result(this.#connectionVerdict.verdict, this.#connectionVerdict.step);
    const deadline = this.#clock.now() + this.#timeouts.messageMs;
    const result = await this.#transaction(message, negotiation, deadline);
    if (result.step !== "eom") await this.abort();
    return result;
  }

  /** SMFIC_ABORT: forget the message in progress (no answer comes). */
  async abort(): Promise<void> {
    if (this.#channel.failure) return;
    await this.#write(bareCommand(Command.ABORT), "abort", this.#clock.now() + this.#timeouts.commandMs);
  }

  /** SMFIC_QUIT, then close the connection; resolves once it is closed. */
  close(): Promise<void> {
    return this.#channel.end(bareCommand(Command.QUIT), this.#timeouts.commandMs);
  }

  async #transaction(
    message: MilterMessage,
    negotiation: Negotiation,
    deadline: number,
  ): Promise<MilterMessageResult> {
    const macros = message.macros ?? {};
    const { sender } = message;
    let reply = await this.#event({
      step: "mail",
      code: Command.MAIL,
      packet: envelopeCommand(Command.MAIL, [`<${sender.address}>`, ...(sender.args ?? [])]),
      macros: { ...macros.mail, "{mail_addr}": sender.address },
      macroStage: MacroStage.ENVFROM,
      skipFlag: Protocol.NOMAIL,
      noReplyFlag: Protocol.NR_MAIL,
    }, deadline);
    if (isFinal(reply)) return this.#result(reply, "mail");

    const refused: { address: string; verdict: MilterFinalVerdict }[] = [];
    let skipping = false;
    for (const recipient of message.recipients) {
      if (skipping) continue;
      reply = await this.#event({
        step: "rcpt",
        code: Command.RCPT,
        packet: envelopeCommand(Command.RCPT, [`<${recipient.address}>`, ...(recipient.args ?? [])]),
        macros: { ...macros.rcpt, "{rcpt_addr}": recipient.address },
        macroStage: MacroStage.ENVRCPT,
        skipFlag: Protocol.NORCPT,
        noReplyFlag: Protocol.NR_RCPT,
      }, deadline);
      if (reply.kind === "skip") skipping = true;
      else if (reply.kind === "accept" || reply.kind === "discard") return this.#result(reply, "rcpt", refused);
      // A refusal at RCPT refuses that recipient; the message goes on for the others.
      else if (isFinal(reply)) refused.push({ address: recipient.address, verdict: reply });
    }
    if (refused.length === message.recipients.length) return this.#result(refused.at(-1)!.verdict, "rcpt", refused);

    reply = await this.#event({
      step: "data",
      code: Command.DATA,
      macros: macros.data,
      macroStage: MacroStage.DATA,
      skipFlag: Protocol.NODATA,
      noReplyFlag: Protocol.NR_DATA,
    }, deadline);
    if (isFinal(reply)) return this.#result(reply, "data", refused);

    const view = milterView(message.content, (negotiation.protocol & Protocol.HDR_LEADSPC) !== 0);
    for (const header of view.headers) {
      reply = await this.#event({
        step: "header",
        code: Command.HEADER,
        packet: headerCommand(header.name, header.value),
        macros: macros.eoh,
        macroStage: MacroStage.EOH,
        skipFlag: Protocol.NOHDRS,
        noReplyFlag: Protocol.NR_HDR,
      }, deadline);
      if (reply.kind === "skip") break;
      if (isFinal(reply)) return this.#result(reply, "header", refused);
    }

    reply = await this.#event({
      step: "eoh",
      code: Command.EOH,
      macros: macros.eoh,
      macroStage: MacroStage.EOH,
      skipFlag: Protocol.NOEOH,
      noReplyFlag: Protocol.NR_EOH,
    }, deadline);
    if (isFinal(reply)) return this.#result(reply, "eoh", refused);

    for (let at = 0; at < view.body.length; at += MILTER_CHUNK_SIZE) {
      reply = await this.#event({
        step: "body",
        code: Command.BODY,
        packet: bodyCommand(view.body.subarray(at, at + MILTER_CHUNK_SIZE)),
        macros: macros.eom,
        macroStage: MacroStage.EOM,
        skipFlag: Protocol.NOBODY,
        noReplyFlag: Protocol.NR_BODY,
      }, deadline);
      if (reply.kind === "skip") break;
      if (isFinal(reply)) return this.#result(reply, "body", refused);
    }

    return this.#endOfMessage(macros.eom, deadline, refused);
  }

  /** SMFIC_BODYEOB: always answered; modifications come first, then the verdict ("continue" means accept). */
  async #endOfMessage(
    macros: Macros | undefined,
    deadline: number,
    refused: { address: string; verdict: MilterFinalVerdict }[],
  ): Promise<MilterMessageResult> {
    const edits = new EditCollector(this.#maxEditBytes);
    const reply = await this.#event(
      {
        step: "eom",
        code: Command.BODYEOB,
        macros,
        macroStage: MacroStage.EOM,
        skipFlag: 0,
        noReplyFlag: 0,
      },
      deadline,
      edits,
    );
    const verdict = isFinal(reply) ? reply : { kind: "accept" as const };
    return this.#result(verdict, "eom", refused, edits.list());
  }

  async #connectionEvent(spec: EventSpec): Promise<MilterVerdict> {
    this.#requireNegotiation();
    if (this.#connectionVerdict) return this.#connectionVerdict.verdict;
    const reply = await this.#event(spec, this.#clock.now() + this.#timeouts.commandMs);
    // DISCARD means nothing for a connection (mfapi.h); Postfix ignores it there too.
    if (reply.kind === "discard" || !isFinal(reply)) return CONTINUE;
    this.#connectionVerdict = { verdict: reply, step: spec.step };
    return reply;
  }

  /**
   * Send an event's macros (even when the event itself is not sent, as
   * milter8.c does), then the event unless the milter asked not to have it,
   * then read its answer unless the milter said it gives none.
   */
  async #event(
    spec: EventSpec,
    deadline: number,
    edits?: EditCollector,
  ): Promise<MilterVerdict | { kind: "skip" }> {
    const negotiation = this.#requireNegotiation();
    const macros = chosenMacros(spec.macros ?? {}, negotiation.macroLists.get(spec.macroStage));
    if (Object.keys(macros).length > 0) await this.#hold(macroCommand(spec.code, macros), spec.step, deadline);
    if ((negotiation.protocol & spec.skipFlag) !== 0) return CONTINUE;
    const packet = spec.packet ?? bareCommand(spec.code);
    if ((negotiation.protocol & spec.noReplyFlag) !== 0) {
      await this.#hold(packet, spec.step, deadline);
      return CONTINUE;
    }
    await this.#write(packet, spec.step, deadline);
    return this.#guard(() => this.#answer(spec.step, deadline, negotiation, edits));
  }

  /** Read replies up to the one that answers the event; progress, quarantine and (at eom) edits come before it. */
  async #answer(
    step: MilterStep,
    deadline: number,
    negotiation: Negotiation,
    edits: EditCollector | undefined,
  ): Promise<MilterVerdict | { kind: "skip" }> {
    const leadingSpace = (negotiation.protocol & Protocol.HDR_LEADSPC) !== 0;
    for (;;) {
      const [label, waitMs] = this.#limit(step, deadline);
      const packet = await this.#channel.next(label, waitMs);
      const reply: MilterReply = parseReply(packet, leadingSpace);
      switch (reply.kind) {
        case "progress":
          continue;
        case "quarantine":
          checkAction(packet.code, negotiation.actions);
          this.#quarantine = reply.reason;
          continue;
        case "accept":
        case "continue":
        case "discard":
        case "reject":
        case "tempfail":
        case "replycode":
        case "skip":
          return reply;
        default:
          if (!edits) {
            throw new MilterProtocolError(
              `reply ${describeCode(packet.code)} changes the message, allowed only at end of message, not at ${step}`,
            );
          }
          checkAction(packet.code, negotiation.actions);
          edits.add(reply);
      }
    }
  }

  /** Send a packet now, with those held before it. */
  async #write(packet: Uint8Array, step: string, deadline: number): Promise<void> {
    const [label, waitMs] = this.#limit(step, deadline);
    await this.#channel.write(packet, label, waitMs);
  }

  /** Keep a packet no reply answers to go with the next that is answered (or ABORT, or QUIT). */
  async #hold(packet: Uint8Array, step: string, deadline: number): Promise<void> {
    const [label, waitMs] = this.#limit(step, deadline);
    await this.#channel.hold(packet, label, waitMs);
  }

  /** How long the next wait may last: the command timeout, or what is left of the message's. */
  #limit(step: string, deadline: number): [string, number] {
    const left = Math.max(0, deadline - this.#clock.now());
    if (left >= this.#timeouts.commandMs) return [step, this.#timeouts.commandMs];
    return [`${step} (the message's ${this.#timeouts.messageMs} ms ran out)`, left];
  }

  /** Run a read; a protocol error there ends the connection (replies may be in flight) and is rethrown. */
  async #guard<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof MilterError) this.#channel.fail(error);
      throw error;
    }
  }

  #requireNegotiation(): Negotiation {
    if (!this.#negotiation) throw new Error("negotiate() with the milter first");
    return this.#negotiation;
  }

  #result(
    verdict: MilterFinalVerdict,
    step: MilterStep,
    refusedRecipients: { address: string; verdict: MilterFinalVerdict }[] = [],
    modifications: MilterModification[] = [],
  ): MilterMessageResult {
    const result = { verdict, step, refusedRecipients, modifications };
    return this.#quarantine === undefined ? result : { ...result, quarantine: this.#quarantine };
  }
}

function isFinal(reply: MilterVerdict | { kind: "skip" }): reply is MilterFinalVerdict {
  return reply.kind !== "continue" && reply.kind !== "skip";
}
