/** Jazzer.js target (scripts/fuzz.ts): the DNS message decoder returns a message or an error, never throws. */
import { decodeMessage } from "../../src/dns/wire.ts";
import { check } from "./check.ts";

export function fuzz(data: Buffer): void {
  const result = decodeMessage(new Uint8Array(data));
  if (!result.ok) check(result.error.length > 0, "error without text");
}
