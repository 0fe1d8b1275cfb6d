import type { Reply } from "../../core/reply.ts";
import { has8BitBytes } from "./dot-stuff.ts";

/**
 * EHLO keywords (RFC 5321 4.1.1.1): the lines after the first, keyword upper-cased,
 * parameters kept as sent ("SIZE" -> "10485760", "PIPELINING" -> "").
 */
export function parseExtensions(ehlo: Reply): Map<string, string> {
  const extensions = new Map<string, string>();
  for (const line of ehlo.lines.slice(1)) {
    const match = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(line.trim());
    if (match) extensions.set(match[1]!.toUpperCase(), (match[2] ?? "").trim());
  }
  return extensions;
}

const nonAscii = (s: string): boolean => /[^\x00-\x7f]/.test(s);

/**
 * MAIL FROM parameters the client adds on its own: SIZE=n (RFC 1870), BODY=8BITMIME
 * (RFC 6152) for 8-bit content, SMTPUTF8 (RFC 6531) for non-ASCII addresses, each only
 * when advertised and not already given by the caller.
 */
export function mailParameters(
  extensions: ReadonlyMap<string, string>,
  message: Uint8Array,
  addresses: readonly string[],
  given: readonly string[] = [],
): string[] {
  const keys = new Set(given.map((p) => p.split("=")[0]!.toUpperCase()));
  const params = [...given];
  const add = (key: string, value?: string) => {
    if (!keys.has(key)) params.push(value === undefined ? key : `${key}=${value}`);
  };
  if (extensions.has("SIZE")) add("SIZE", String(message.length));
  if (extensions.has("8BITMIME") && has8BitBytes(message)) add("BODY", "8BITMIME");
  if (extensions.has("SMTPUTF8") && addresses.some(nonAscii)) add("SMTPUTF8");
  return params;
}
