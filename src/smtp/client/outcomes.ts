import type { Reply } from "../../core/reply.ts";
import type { SendResult } from "./transaction.ts";

/**
 * The reply that decided each recipient: the RCPT (or MAIL) refusal, or for an
 * accepted recipient the reply to the data (RFC 5321 3.3). A recipient accepted
 * at RCPT whose transaction produced no data reply gets its RCPT reply.
 */
export function recipientOutcomes(result: SendResult): { address: string; reply: Reply }[] {
  return result.recipients.map(({ address, reply }) => ({
    address,
    reply: reply.code >= 200 && reply.code < 300 && result.data ? result.data : reply,
  }));
}
