import { type Reply, reply } from "../../core/reply.ts";
import { decodeUtf8, LOGIN_PASSWORD, LOGIN_USERNAME, parsePlain, parseResponse } from "../protocol/sasl.ts";
import type { CommandContext, SaslState } from "./commands.ts";
import type { AuthCredentials } from "./types.ts";

/**
 * SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN. Only on TLS; the
 * decision is the onAuth hook's. A 334 reply keeps the exchange open
 * (ctx.state.sasl) and the next line is a response, not a command. Neither
 * the AUTH line nor a response is ever logged, echoed or passed to any hook
 * but onAuth.
 */

const cancelled = () => reply(501, "5.0.0", "Authentication cancelled");
const badBase64 = () => reply(501, "5.5.2", "Invalid base64 in authentication response");
const badResponse = (mechanism: string) => reply(501, "5.5.2", `Malformed ${mechanism} authentication response`);

export async function auth(ctx: CommandContext, args: string): Promise<Reply> {
  if (!ctx.hooks.onAuth) return reply(502, "5.5.1", "AUTH not available");
  if (!ctx.state.greeted) return reply(503, "5.5.1", "Send EHLO first");
  if (ctx.info.user !== undefined) return reply(503, "5.5.1", "Already authenticated");
  // RFC 4954 4: not during a mail transaction.
  if (ctx.state.tx) return reply(503, "5.5.1", "AUTH not permitted during a mail transaction");
  if (!ctx.info.secure) return reply(538, "5.7.11", "Encryption required for requested authentication mechanism");
  const m = /^([A-Za-z0-9_-]+)(?: (\S+))?$/.exec(args);
  if (!m) return reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
  const mechanism = m[1]!.toUpperCase();
  if (mechanism !== "PLAIN" && mechanism !== "LOGIN") return reply(504, "5.5.4", "Unrecognized authentication type");
  const state: SaslState = { mechanism };
  const initial = m[2];
  if (initial === undefined) {
    ctx.state.sasl = state;
    return challenge(mechanism === "PLAIN" ? "" : LOGIN_USERNAME);
  }
  return step(ctx, state, initial, true);
}

/** The client's answer to a 334 challenge. */
export function saslResponse(ctx: CommandContext, line: string): Promise<Reply> {
  const state = ctx.state.sasl!;
  ctx.state.sasl = undefined;
  return step(ctx, state, line, false);
}

/** Ends an exchange whose response line could not be read. */
export function saslAbort(ctx: CommandContext, why: "too-long" | "bad"): Reply {
  ctx.state.sasl = undefined;
  // RFC 4954 6: "500 5.5.6 Authentication Exchange line is too long".
  return why === "too-long" ? reply(500, "5.5.6", "Authentication Exchange line is too long") : badBase64();
}

/** A 334 challenge: the text is base64 (RFC 4954 4), possibly empty. */
function challenge(base64: string): Reply {
  return reply(334, undefined, base64);
}

async function step(ctx: CommandContext, state: SaslState, line: string, initial: boolean): Promise<Reply> {
  const response = parseResponse(line, initial);
  if (response.kind === "cancel") return cancelled();
  if (response.kind === "bad") return badBase64();
  if (state.mechanism === "PLAIN") {
    const plain = parsePlain(response.bytes);
    if (!plain) return badResponse("PLAIN");
    // Acting for another identity is not supported (RFC 4616 2: authzid).
    if (plain.authzid !== "" && plain.authzid !== plain.authcid) {
      return reply(535, "5.7.8", "Authorization identity not permitted");
    }
    return verify(ctx, { mechanism: "PLAIN", username: plain.authcid, password: plain.password });
  }
  const text = decodeUtf8(response.bytes);
  if (text === undefined || text === "" || text.includes("\0")) return badResponse("LOGIN");
  if (state.username === undefined) {
    ctx.state.sasl = { mechanism: "LOGIN", username: text };
    return challenge(LOGIN_PASSWORD);
  }
  return verify(ctx, { mechanism: "LOGIN", username: state.username, password: text });
}

async function verify(ctx: CommandContext, credentials: AuthCredentials): Promise<Reply> {
  const onAuth = ctx.hooks.onAuth!;
  const result = await ctx.call(() => onAuth.call(ctx.hooks, ctx.info, credentials));
  // RFC 4954 6: 454 4.7.0 for a temporary failure; the error itself is not shown.
  if (!result) return reply(454, "4.7.0", "Temporary authentication failure");
  if (result.value) return result.value;
  ctx.info.user = credentials.username;
  return reply(235, "2.7.0", "Authentication successful");
}
