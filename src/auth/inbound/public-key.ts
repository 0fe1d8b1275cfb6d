/**
 * The DKIM key record lookup (RFC 6376 3.6.2, RFC 8463 4; ARC uses the same
 * records, RFC 8617 4.1.3): mailauth's `getPublicKey`, which parses the TXT
 * record, checks v=, k= and the key, and applies the shortest RSA key
 * allowed. The one place that reaches below mailauth's public API for
 * verification (pinned to the exact version in package.json for that).
 */
import { getPublicKey } from "../mailauth.ts";
import type { MailauthResolver } from "../mailauth-resolver.ts";

export type KeyLookup =
  | { readonly ok: true; readonly publicKey: string; readonly bits?: number }
  | { readonly ok: false; readonly result: "permerror" | "temperror" | "policy"; readonly comment: string };

/** `kind` DKIM checks the record's v=DKIM1; ARC records are read the same way without it. */
export async function lookUpPublicKey(
  kind: "DKIM" | "ARC",
  name: string,
  minBitLength: number,
  resolver: MailauthResolver,
): Promise<KeyLookup> {
  try {
    const found = await getPublicKey(kind === "DKIM" ? "DKIM" : "AS", name, minBitLength, resolver);
    return { ok: true, publicKey: found.publicKey.toString(), bits: found.modulusLength };
  } catch (error) {
    const code = (error as { code?: string }).code;
    switch (code) {
      case "ENOTFOUND":
      case "ENODATA":
        return { ok: false, result: "permerror", comment: "no key" };
      case "EINVALIDVER":
        return { ok: false, result: "permerror", comment: "unknown key version" };
      case "EINVALIDTYPE":
        return { ok: false, result: "permerror", comment: "unknown key type" };
      case "EINVALIDVAL":
        return { ok: false, result: "permerror", comment: "invalid public key" };
      case "ESHORTKEY":
        return { ok: false, result: "policy", comment: "key shorter than allowed" };
      default:
        return {
          ok: false,
          result: "temperror",
          comment: `DNS failure: ${code ?? (error instanceof Error ? error.message : String(error))}`,
        };
    }
  }
}
