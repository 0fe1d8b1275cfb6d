/** Jazzer.js target (scripts/fuzz.ts): the send body validation as POST /v1/messages runs it, and Name <address>. */
import * as v from "valibot";
import { parseMailbox } from "../../src/core/address.ts";
import {
  extractAddress,
  isRawRequest,
  parseNameAddress,
  rawMessageSchema,
  structuredMessageSchema,
} from "../../src/http/message-schema.ts";
import { check } from "./check.ts";

export function fuzz(data: Buffer): void {
  const text = data.toString("utf8");
  const named = parseNameAddress(text);
  if (typeof named !== "string") check(parseMailbox(named.address, { utf8: true }).ok, "Name <address>");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return; // the route answers 400 before validating
  }
  const isRaw = isRawRequest(json);
  const result = v.safeParse(isRaw ? rawMessageSchema : structuredMessageSchema, json, { abortEarly: false });
  if (!result.success || isRaw) return;
  const from = extractAddress((result.output as { from: string }).from);
  check(parseMailbox(from, { utf8: true }).ok, "accepted From");
}
