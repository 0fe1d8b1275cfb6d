import type { Reply } from "../../core/reply.ts";
import type { ReplyChannel } from "./channel.ts";
import { type ClientStage, SmtpClientError } from "./errors.ts";
import { encodeData } from "./dot-stuff.ts";
import { dsnMailParameters, type DsnParameters, dsnRecipientParameters, mailParameters } from "./extensions.ts";
import type { ClientTimeouts } from "./options.ts";

export interface Envelope {
  /** Reverse path without brackets; "" for the null sender (bounces). */
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  /** Extra MAIL FROM parameters ("ENVID=x", "RET=HDRS"); SIZE/BODY/SMTPUTF8 are added when advertised. */
  readonly mailParams?: readonly string[];
  /**
   * RFC 3461 RET/ENVID and per-recipient NOTIFY/ORCPT, sent only when the
   * server advertises DSN (a server without it would refuse them).
   */
  readonly dsn?: DsnParameters;
}

export interface RecipientReply {
  readonly address: string;
  /** The RCPT reply; when MAIL was refused, the MAIL reply. */
  readonly reply: Reply;
}

export interface SendResult {
  readonly mail: Reply;
  readonly recipients: readonly RecipientReply[];
  /** The DATA refusal or the final reply after the data; absent when MAIL failed or no recipient was accepted. */
  readonly data?: Reply;
}

/** What the transaction leaves behind for the session. */
export interface TransactionEnd {
  readonly result: SendResult;
  /** A transaction is still open on the server: send RSET before the next MAIL. */
  readonly needsReset: boolean;
  /** The server said 421 (RFC 5321 3.8): it is closing the connection. */
  readonly closing: boolean;
}

const is2xx = (r: Reply) => r.code >= 200 && r.code < 300;
const END_OF_DATA = "end of DATA";

function checkAddress(address: string): void {
  if (/[\r\n<>\s]/.test(address)) throw new TypeError(`invalid address for SMTP: ${JSON.stringify(address)}`);
}

/**
 * One mail transaction (RFC 5321 3.3). With PIPELINING (RFC 2920) the optional RSET,
 * MAIL, every RCPT and DATA go out in one write and every reply is read in order;
 * without it each command waits for its reply. After a 421 no more replies are read:
 * each unanswered command gets that 421.
 */
export async function runTransaction(
  channel: ReplyChannel,
  extensions: ReadonlyMap<string, string>,
  t: ClientTimeouts,
  envelope: Envelope,
  content: { readonly message: Uint8Array; readonly lineBreaks: "crlf" | "any" },
  reset: boolean,
): Promise<TransactionEnd> {
  if (envelope.recipients.length === 0) throw new TypeError("a transaction needs at least one recipient");
  [envelope.mailFrom, ...envelope.recipients].forEach(checkAddress);
  const dsn = extensions.has("DSN") ? envelope.dsn : undefined;
  const given = [...(envelope.mailParams ?? [])];
  const givenKeys = new Set(given.map((p) => p.split("=")[0]!.toUpperCase()));
  given.push(...dsnMailParameters(dsn).filter((p) => !givenKeys.has(p.split("=")[0]!)));
  const { message, lineBreaks } = content;
  const params = mailParameters(extensions, message, [envelope.mailFrom, ...envelope.recipients], given);
  if (params.some((p) => /[\r\n]/.test(p))) throw new TypeError("MAIL parameters must not contain CR or LF");
  const mailCommand = `MAIL FROM:<${envelope.mailFrom}>${params.map((p) => ` ${p}`).join("")}`;
  const rcptCommands = envelope.recipients.map((address, i) => {
    const rcptParams = dsnRecipientParameters(dsn?.recipients?.[i]);
    return `RCPT TO:<${address}>${rcptParams.map((p) => ` ${p}`).join("")}`;
  });
  const pipelined = extensions.has("PIPELINING");

  let closing: Reply | undefined;
  const ask = async (stage: ClientStage, command: string): Promise<Reply> => {
    if (closing) return { ...closing, command };
    if (!pipelined) channel.write(`${command}\r\n`);
    const reply = await channel.next(stage, command, t[stage as keyof ClientTimeouts]);
    if (reply.code === 421) closing = reply;
    return reply;
  };

  if (pipelined) {
    const group = [...(reset ? ["RSET"] : []), mailCommand, ...rcptCommands, "DATA"];
    channel.write(group.map((c) => `${c}\r\n`).join(""));
  }
  const partial: { mail?: Reply; recipients: RecipientReply[] } = { recipients: [] };
  try {
    if (reset) {
      const rset = await ask("rset", "RSET");
      if (!is2xx(rset) && !closing) throw new SmtpClientError("reply", "rset", `RSET refused: ${rset.code}`, rset);
    }
    const mail = (partial.mail = await ask("mail", mailCommand));
    const replies: Reply[] = [];
    for (const command of rcptCommands) {
      if (!pipelined && !is2xx(mail)) break;
      replies.push(await ask("rcpt", command));
      partial.recipients.push({ address: envelope.recipients[replies.length - 1]!, reply: replies.at(-1)! });
    }
    const recipients = envelope.recipients.map((address, i) => ({
      address,
      reply: is2xx(mail) ? replies[i]! : mail,
    }));
    const accepted = is2xx(mail) && replies.some(is2xx);
    if (!pipelined && !accepted) {
      return { result: { mail, recipients }, needsReset: is2xx(mail), closing: !!closing };
    }
    const data = await ask("data", "DATA");
    if (data.code !== 354) {
      const result = accepted ? { mail, recipients, data } : { mail, recipients };
      return { result, needsReset: is2xx(mail), closing: !!closing };
    }
    if (!accepted) {
      // RFC 2920 3.1: DATA was accepted although no recipient was; end it with a lone dot.
      channel.write(".\r\n");
      await channel.next("dataEnd", END_OF_DATA, t.dataEnd);
      return { result: { mail, recipients }, needsReset: false, closing: !!closing };
    }
    channel.write(encodeData(message, lineBreaks));
    const final = await channel.next("dataEnd", END_OF_DATA, t.dataEnd);
    return { result: { mail, recipients, data: final }, needsReset: false, closing: final.code === 421 };
  } catch (error) {
    if (error instanceof SmtpClientError) error.partial = partial;
    throw error;
  }
}
