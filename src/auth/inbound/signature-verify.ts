/**
 * Verifying one DKIM-Signature (RFC 6376 6.1; Ed25519 RFC 8463) or
 * ARC-Message-Signature (RFC 8617 5.2, which verifies like a DKIM-Signature)
 * on the message's octets, canonicalized by ../dkim-canon.ts: what is
 * verified is what dkimpy, OpenDKIM and the big receivers verify, UTF-8
 * header fields included.
 */
import { createHash, verify } from "node:crypto";
import {
  bodyHash,
  ByteSink,
  canonicalHeader,
  type Canonicalization,
  type HashAlgorithm,
  signatureHeader,
} from "../dkim-canon.ts";
import { type HeaderField, type MessageParts } from "../../core/header-section.ts";
import { parseTagList } from "../dkim-keys.ts";
import type { MailauthResolver } from "../mailauth-resolver.ts";
import { lookUpPublicKey } from "./public-key.ts";
import type { AuthResult } from "./results.ts";

export interface VerifyDeps {
  readonly resolver: MailauthResolver;
  /** Shortest RSA key accepted, bits. */
  readonly minBitLength: number;
  /** Now, ms since the epoch (x= expiry). */
  readonly now: number;
}

export interface SignatureCheck {
  readonly result: AuthResult;
  readonly comment?: string;
}

const latin1 = new TextDecoder("latin1");

/** The tags of a tag-list field (RFC 6376 3.2), values without whitespace. */
export function fieldTags(message: Uint8Array, field: HeaderField): Map<string, string> {
  return parseTagList(latin1.decode(message.subarray(field.colon + 1, field.end)));
}

/** Body hashes by canonicalization, algorithm and l=, each computed once per message. */
export class BodyHashes {
  private readonly known = new Map<string, string>();
  constructor(
    private readonly message: Uint8Array,
    private readonly parts: MessageParts,
  ) {}
  of(canonicalization: Canonicalization, algorithm: HashAlgorithm, limit: number | undefined): string {
    const key = `${canonicalization}:${algorithm}:${limit ?? ""}`;
    let hash = this.known.get(key);
    if (hash === undefined) {
      hash = bodyHash(this.message, this.parts.bodyStart, canonicalization, algorithm, limit);
      this.known.set(key, hash);
    }
    return hash;
  }
}

/**
 * The header fields h= names, in its order, each name taking the next
 * instance from the bottom up; a name with none left adds nothing
 * (RFC 6376 5.4.2).
 */
export function selectFields(fields: readonly HeaderField[], names: readonly string[]): HeaderField[] {
  const next = new Map<string, number>();
  const selected: HeaderField[] = [];
  for (const name of names) {
    let i = next.get(name) ?? fields.length;
    while (--i >= 0 && fields[i]!.name !== name);
    next.set(name, Math.max(i, 0));
    if (i >= 0) selected.push(fields[i]!);
  }
  return selected;
}

const ALGORITHMS: Record<string, { key: "rsa" | "ed25519"; hash: HashAlgorithm }> = {
  "rsa-sha256": { key: "rsa", hash: "sha256" },
  "rsa-sha1": { key: "rsa", hash: "sha1" },
  "ed25519-sha256": { key: "ed25519", hash: "sha256" },
};

const CANONICALIZATIONS = new Set(["simple", "relaxed"]);

/**
 * Verify the signature in `field` (tags `tags`). `kind` DKIM needs v=1 and
 * From among h= (RFC 6376 6.1.1); ARC's AMS has i= instead, and c= relaxed
 * when absent.
 */
export async function verifySignature(
  kind: "DKIM" | "ARC",
  message: Uint8Array,
  parts: MessageParts,
  field: HeaderField,
  tags: Map<string, string>,
  bodies: BodyHashes,
  deps: VerifyDeps,
): Promise<SignatureCheck> {
  const unusable = (comment: string): SignatureCheck => ({ result: "permerror", comment });
  for (const tag of ["a", "b", "bh", "d", "h", "s"]) if (!tags.get(tag)) return unusable(`no ${tag}= tag`);
  if (kind === "DKIM" && tags.get("v") !== "1") return unusable("v= is not 1");
  const algorithm = ALGORITHMS[tags.get("a")!.toLowerCase()];
  if (algorithm === undefined) return unusable(`unknown algorithm ${tags.get("a")}`);
  const [headerCanon = "simple", bodyCanon = "simple"] =
    (tags.get("c") ?? (kind === "ARC" ? "relaxed/relaxed" : "simple/simple")).toLowerCase().split("/");
  if (!CANONICALIZATIONS.has(headerCanon) || !CANONICALIZATIONS.has(bodyCanon)) {
    return unusable(`unknown canonicalization ${tags.get("c")}`);
  }
  const names = tags.get("h")!.toLowerCase().split(":").filter((n) => n !== "");
  if (kind === "DKIM" && !names.includes("from")) return unusable("From field not signed");
  const l = tags.get("l");
  if (l !== undefined && !/^\d{1,76}$/.test(l)) return unusable(`l= is not a number`);

  const bh = bodies.of(bodyCanon as Canonicalization, algorithm.hash, l === undefined ? undefined : Number(l));
  if (bh !== tags.get("bh")) return { result: "fail", comment: "body hash did not verify" };

  const domain = tags.get("d")!;
  const key = await lookUpPublicKey(kind, `${tags.get("s")}._domainkey.${domain}`, deps.minBitLength, deps.resolver);
  if (!key.ok) return { result: key.result, comment: key.comment };

  const data = new ByteSink(2048);
  for (const signed of selectFields(parts.fields, names)) {
    canonicalHeader(headerCanon as Canonicalization, message, signed, data);
  }
  signatureHeader(headerCanon as Canonicalization, message, field, data);
  const signature = Buffer.from(tags.get("b")!, "base64");
  let valid: boolean;
  try {
    valid = algorithm.key === "rsa"
      ? verify(algorithm.hash, data.bytes(), key.publicKey, signature)
      : verify(null, createHash("sha256").update(data.bytes()).digest(), key.publicKey, signature);
  } catch (error) {
    // The record's key is not of the algorithm a= names (RFC 6376 6.1.2).
    return unusable(`key does not fit a=${tags.get("a")}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!valid) return { result: "fail", comment: "bad signature" };
  const t = Number(tags.get("t"));
  const x = Number(tags.get("x"));
  if (tags.has("x") && tags.has("t") && x < t) return { result: "neutral", comment: "invalid expiration" };
  if (tags.has("x") && x * 1000 < deps.now) return { result: "neutral", comment: "expired" };
  return { result: "pass" };
}
