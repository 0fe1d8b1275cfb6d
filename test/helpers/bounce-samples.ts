import { readFileSync } from "node:fs";

/**
 * A sample from test/fixtures/bounces/ as it travels (CRLF), with its
 * placeholders filled in: the recipient it reports and the VERP return path
 * the original message left with.
 */
export function bounceSample(name: string, rcpt: string, returnPath: string): Uint8Array {
  const text = readFileSync(new URL(`../fixtures/bounces/${name}.eml`, import.meta.url), "utf8")
    .replaceAll("%RCPT%", rcpt)
    .replaceAll("%RETURN_PATH%", returnPath);
  return new TextEncoder().encode(text.replace(/\r?\n/g, "\r\n"));
}
