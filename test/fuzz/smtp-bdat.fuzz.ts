/** Jazzer.js target (scripts/fuzz.ts): BDAT chunks of any sizes give the message's bytes and hand back the rest. */
import { ChunkReader, MessageBuffer } from "../../src/smtp/protocol/index.ts";
import { check, chunks, concat, sizesAndPayload } from "./check.ts";

export function fuzz(data: Buffer): void {
  const { sizes, payload } = sizesAndPayload(data);
  const parts = chunks(payload, sizes);
  const whole = concat(parts);
  const size = Math.min(whole.length, (sizes[0] ?? 0) * 3);
  const message = new MessageBuffer({ maxBytes: 1 << 24, maxLineLength: 998 });
  const reader = new ChunkReader(size, message);
  const rest: Uint8Array[] = [];
  let after: Uint8Array | undefined;
  for (const part of parts) {
    if (after !== undefined) rest.push(part);
    else after = reader.push(part);
  }
  check(Buffer.from(message.bytes()).equals(whole.subarray(0, size)), "chunk bytes differ");
  if (size > 0) check(Buffer.from(concat([after ?? new Uint8Array(0), ...rest])).equals(whole.subarray(size)), "rest");
}
