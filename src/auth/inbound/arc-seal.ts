/**
 * ARC sealing (RFC 8617 5.1): the set an intermediary adds when it forwards
 * a message whose authentication it checked — ARC-Authentication-Results
 * (our results), ARC-Message-Signature (over the message as forwarded) and
 * ARC-Seal (over the chain, with cv= the chain's validation status) — made
 * by mailauth with the key given.
 */
import { Buffer } from "node:buffer";
import { createPrivateKey } from "node:crypto";
import { createSeal } from "mailauth/lib/arc/index.js";
import type { Clock } from "../../core/clock.ts";

/** A signing key for ARC. RFC 8617 allows rsa-sha256 only, so it must be RSA. */
export interface ArcSealKey {
  /** d= */
  readonly domain: string;
  /** s= */
  readonly selector: string;
  /** PEM (PKCS#8 or PKCS#1). */
  readonly privateKey: string | Uint8Array;
}

export interface ArcSealInput {
  /** The Authentication-Results value this set carries: "host;\r\n\tspf=pass ...". */
  readonly authResults: string;
  /** The validation status of the chain so far (RFC 8617 4.1.3): none without a chain. */
  readonly cv: "none" | "pass" | "fail";
}

/**
 * The three header fields to put on top of `message`, ARC-Seal first (each
 * folded, without its final CRLF). Throws when the key is not RSA or
 * mailauth cannot sign with it.
 */
export async function arcSeal(message: Uint8Array, input: ArcSealInput, key: ArcSealKey, deps: { readonly clock: Clock }): Promise<string[]> {
  const privateKey = typeof key.privateKey === "string" ? key.privateKey : Buffer.from(key.privateKey);
  const type = createPrivateKey(privateKey).asymmetricKeyType;
  if (type !== "rsa") throw new Error(`ARC sealing needs an RSA key (RFC 8617 rsa-sha256); the key for ${key.selector}._domainkey.${key.domain} is ${type}`);
  const seal = {
    signingDomain: key.domain,
    selector: key.selector,
    privateKey,
    algorithm: "rsa-sha256",
    cv: input.cv,
    authResults: input.authResults,
    signTime: new Date(deps.clock.now()),
  };
  const bytes = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  const { headers } = await createSeal(bytes, { seal });
  if (headers.length !== 3 || headers.some((h) => typeof h !== "string" || h === "")) {
    throw new Error(`ARC sealing with ${key.selector}._domainkey.${key.domain} produced no signature`);
  }
  return headers.map((h) => h.replace(/\r?\n$/, ""));
}
