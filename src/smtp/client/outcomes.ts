import type { Reply } from "../../core/reply.ts";
import type { SendResult } from "./transaction.ts";

/**
 * The reply that decided each recipient (RFC 5321 3.3): its RCPT (or MAIL)
 * refusal, or, when RCPT was accepted, the DATA refusal or final reply.
 */
export function recipientOutcomes(result: SendResult): { address: string; reply: Reply }[] {
  return result.recipients.map(({ address, reply }) => ({
    address,
    reply: reply.code >= 200 && reply.code < 300 && result.data ? result.data : reply,
  }));
}
