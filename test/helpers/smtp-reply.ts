import assert from "node:assert/strict";
import type { Reply } from "../../src/core/reply.ts";
import { ReplyReader } from "../../src/smtp/client/reply-reader.ts";

/** A reply as the SMTP client reads it off the wire: `wireReply("421-4.7.28 first line", "421 4.7.28 last")`. */
export function wireReply(...lines: string[]): Reply {
  const [reply] = new ReplyReader().push(new TextEncoder().encode(lines.map((l) => `${l}\r\n`).join("")));
  assert.ok(reply, "a whole reply");
  return reply;
}
