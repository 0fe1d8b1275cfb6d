/** Jazzer.js target (scripts/fuzz.ts): the SMTP client's reply reader; a ReplyFormatError is its refusal. */
import { ReplyFormatError, ReplyReader } from "../../src/smtp/client/reply-reader.ts";
import { check, chunks, sizesAndPayload } from "./check.ts";

export function fuzz(data: Buffer): void {
  const reader = new ReplyReader(4096);
  try {
    const { sizes, payload } = sizesAndPayload(data);
    for (const part of chunks(payload, sizes)) {
      for (const reply of reader.push(part)) {
        check(Number.isInteger(reply.code) && reply.code >= 200 && reply.code <= 599, "reply code");
        if (reply.enhanced) check(reply.enhanced[0] === String(reply.code)[0], "enhanced code class");
      }
    }
  } catch (error) {
    if (!(error instanceof ReplyFormatError)) throw error;
  }
}
