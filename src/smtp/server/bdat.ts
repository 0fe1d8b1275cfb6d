import { toCrlf } from "../../core/crlf.ts";
import { type Reply, reply } from "../../core/reply.ts";
import { ChunkReader, parseBdat } from "../protocol/chunk-reader.ts";
import { MessageBuffer } from "../protocol/message-buffer.ts";
import type { Body } from "./body.ts";
import {
  type CommandContext,
  finishData,
  noMemory,
  releaseMessageMemory,
  reserveMessageMemory,
  tooBig,
} from "./commands.ts";

/**
 * BDAT (RFC 3030). Each chunk is read whole before its reply, even when the
 * command is refused: the client has already sent (or pipelined) it, and its
 * octets must never be read as commands. A non-LAST chunk is answered 250;
 * after LAST the answer is onData's, sent only once it resolves (the message
 * is durable). The content is taken as 8BITMIME (BINARYMIME is not offered):
 * the text line limit holds, and a bare CR or LF becomes CRLF, the form the
 * queue keeps (src/core/crlf.ts); it cannot end anything here, as BDAT
 * counts octets.
 */
export async function bdat(ctx: CommandContext, args: string): Promise<Reply | Body> {
  const parsed = parseBdat(args);
  if (!parsed) return reply(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
  const { size, last } = parsed;
  const refusal = refused(ctx);
  if (refusal) return discard(size, refusal);
  const tx = ctx.state.tx!;
  if (!tx.chunks) {
    const memory = await reserveMessageMemory(ctx);
    if (memory && "code" in memory) {
      // RFC 3030 2: the transaction has failed; the chunk is read and dropped.
      if (ctx.state.tx === tx) ctx.state.tx = undefined;
      return discard(size, memory);
    }
    tx.chunks = new MessageBuffer({
      maxBytes: ctx.options.maxMessageBytes,
      maxLineLength: ctx.options.maxTextLineLength,
      memory,
    });
  }
  const message = tx.chunks;
  const reader = new ChunkReader(size, message);
  return {
    push: (chunk) => reader.push(chunk),
    async finish() {
      if (message.overflow || message.starved) {
        // RFC 3030 2: the transaction has failed; chunks still in the pipeline get 503 and are dropped.
        if (ctx.state.tx === tx) ctx.state.tx = undefined;
        releaseMessageMemory(ctx);
        return message.overflow ? tooBig(ctx) : noMemory(ctx);
      }
      if (!last) return reply(250, "2.0.0", `${size} octets received`);
      return finishData(ctx, {
        message: toCrlf(message.bytes()),
        overflow: false,
        starved: false,
        bareEol: false,
        longLine: message.longLine,
      }).finally(() => releaseMessageMemory(ctx));
    },
  };
}

function refused(ctx: CommandContext): Reply | undefined {
  if (!ctx.state.greeted) return reply(503, "5.5.1", "Send EHLO or HELO first");
  if (!ctx.state.tx) return reply(503, "5.5.1", "Send MAIL first");
  if (ctx.state.tx.recipients.length === 0) return reply(503, "5.5.1", "Send RCPT first");
  return undefined;
}

/** Read the chunk and drop it, then refuse. */
function discard(size: number, refusal: Reply): Body {
  const reader = new ChunkReader(size, undefined);
  return { push: (chunk) => reader.push(chunk), finish: async () => refusal };
}
