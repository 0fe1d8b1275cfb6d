/** Jazzer.js target (scripts/fuzz.ts): the SMTP command line reader, in chunks and whole. */
import { type LineEvent, LineReader } from "../../src/smtp/protocol/index.ts";
import { check, chunks, concat, sizesAndPayload } from "./check.ts";

function events(maxLength: number, parts: readonly Uint8Array[]): LineEvent[] {
  const reader = new LineReader(maxLength);
  const out: LineEvent[] = [];
  for (const part of parts) {
    reader.push(part);
    for (let e = reader.next(); e; e = reader.next()) out.push(e);
    check(reader.buffered <= maxLength + 1, "buffered more than a line");
  }
  return out;
}

export function fuzz(data: Buffer): void {
  const { sizes, payload } = sizesAndPayload(data);
  const maxLength = 4 + (sizes[0] ?? 0) % 64;
  const parts = chunks(payload, sizes);
  const inChunks = events(maxLength, parts);
  check(JSON.stringify(inChunks) === JSON.stringify(events(maxLength, [concat(parts)])), "chunking changed the lines");
  for (const e of inChunks) if (e.kind === "line") check(e.bytes.length + 2 <= maxLength, "line over the limit");
}
