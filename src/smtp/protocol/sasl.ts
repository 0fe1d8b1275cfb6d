/**
 * SASL pieces for SMTP AUTH (RFC 4954): base64 in both directions, the
 * PLAIN message (RFC 4616 2) and the LOGIN prompts (draft-murchison-sasl-login).
 * Nothing here ever puts a client response into an error text.
 */

import { Buffer } from "node:buffer";

/** Longest SASL line from the client, CRLF included (RFC 4954 4). */
export const MAX_SASL_LINE = 12288;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Strict base64 (RFC 4648 4): padded, no whitespace; undefined when malformed. */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  // Reject non-canonical encodings (stray bits in the last character).
  return bytes.toString("base64") === text ? new Uint8Array(bytes) : undefined;
}

export function encodeBase64(text: string): string {
  return Buffer.from(encoder.encode(text)).toString("base64");
}

/** A client response: "*" cancels (RFC 4954 4); "=" alone is an empty initial response. */
export type SaslResponse = { kind: "cancel" } | { kind: "bad" } | { kind: "ok"; bytes: Uint8Array };

export function parseResponse(line: string, initial: boolean): SaslResponse {
  if (line === "*") return { kind: "cancel" };
  if (initial && line === "=") return { kind: "ok", bytes: new Uint8Array(0) };
  const bytes = decodeBase64(line);
  return bytes ? { kind: "ok", bytes } : { kind: "bad" };
}

export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

export interface PlainCredentials {
  readonly authzid: string;
  readonly authcid: string;
  readonly password: string;
}

/** message = [authzid] NUL authcid NUL passwd (RFC 4616 2); undefined when malformed. */
export function parsePlain(bytes: Uint8Array): PlainCredentials | undefined {
  const text = decodeUtf8(bytes);
  if (text === undefined) return undefined;
  const parts = text.split("\0");
  if (parts.length !== 3) return undefined;
  const [authzid, authcid, password] = parts as [string, string, string];
  if (authcid === "" || password === "") return undefined;
  return { authzid, authcid, password };
}

/** The LOGIN challenges, base64 of "Username:" and "Password:". */
export const LOGIN_USERNAME = encodeBase64("Username:");
export const LOGIN_PASSWORD = encodeBase64("Password:");
