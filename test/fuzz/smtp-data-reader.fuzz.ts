/** Jazzer.js target (scripts/fuzz.ts): the DATA reader on raw bytes, and on the client's dot-stuffed encoding. */
import { toCrlf } from "../../src/core/crlf.ts";
import { encodeData } from "../../src/smtp/client/dot-stuff.ts";
import { DataReader } from "../../src/smtp/protocol/index.ts";
import { check, chunks, concat, sizesAndPayload } from "./check.ts";

function read(reader: DataReader, parts: readonly Uint8Array[]): Uint8Array | undefined {
  const rest: Uint8Array[] = [];
  let after: Uint8Array | undefined;
  for (const part of parts) {
    if (after !== undefined) rest.push(part);
    else after = reader.push(part);
  }
  return after === undefined ? undefined : concat([after, ...rest]);
}

export function fuzz(data: Buffer): void {
  const { sizes, payload } = sizesAndPayload(data);
  const maxBytes = (sizes[0] ?? 0) * 4;
  const raw = new DataReader(maxBytes, 998);
  read(raw, chunks(payload, sizes));
  const result = raw.result();
  check(
    result.overflow === result.size > maxBytes && result.message.length === Math.min(result.size, maxBytes),
    "size",
  );

  // Dot-unstuffing undoes dot-stuffing: the message comes back with CRLF line ends and a final CRLF.
  const message = payload;
  const stuffed = new DataReader(1 << 24, 998);
  const after = read(stuffed, chunks(concat([encodeData(message), new TextEncoder().encode("QUIT\r\n")]), sizes));
  check(after !== undefined && new TextDecoder().decode(after) === "QUIT\r\n", "end of data");
  const crlf = toCrlf(message);
  const ends = crlf.length === 0 || (crlf[crlf.length - 2] === 13 && crlf[crlf.length - 1] === 10);
  const expected = ends ? crlf : concat([crlf, new Uint8Array([13, 10])]);
  check(Buffer.from(stuffed.result().message).equals(Buffer.from(expected)), "unstuffed message differs");
}
