/** Header-section edits for inbound authentication, on raw message bytes. */
import { fieldValue, pastLineBreak, splitMessage } from "../../core/header-section.ts";

/** The authserv-id of an Authentication-Results value (RFC 8601 2.2), lower-case, comments skipped. */
export function authservId(value: string): string {
  const text = value.replace(/\\[()]/g, "").replace(/\([^()]*\)/g, " ").trim();
  const match = /^([^\s;]+)/.exec(text);
  return (match?.[1] ?? "").toLowerCase().replace(/\.$/, "");
}

/**
 * Drops every Authentication-Results field whose authserv-id is ours: one that
 * arrives from outside claims a check we did not make (RFC 8601 5).
 * ARC-Authentication-Results are part of ARC sets and are left alone.
 */
export function removeForgedAuthResults(
  message: Uint8Array,
  hostname: string,
): { message: Uint8Array; removed: number } {
  const ours = hostname.toLowerCase().replace(/\.$/, "");
  const drop = splitMessage(message).fields.filter(
    (f) => f.name === "authentication-results" && f.colon < f.end && authservId(fieldValue(message, f)) === ours,
  );
  if (drop.length === 0) return { message, removed: 0 };
  const kept: Uint8Array[] = [];
  let pos = 0;
  for (const f of drop) {
    kept.push(message.subarray(pos, f.start));
    pos = pastLineBreak(message, f);
  }
  kept.push(message.subarray(pos));
  const out = new Uint8Array(kept.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of kept) {
    out.set(part, at);
    at += part.length;
  }
  return { message: out, removed: drop.length };
}
