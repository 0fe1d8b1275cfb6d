/**
 * ARC chain validation (RFC 8617 5.2) on the message's octets: the sets are
 * read from the header section, the newest ARC-Message-Signature is verified
 * like a DKIM-Signature, and every ARC-Seal over the sets up to its own,
 * canonicalized "relaxed" by ../dkim-canon.ts (RFC 8617 4.1.3).
 */
import { verify } from "node:crypto";
import { ByteSink, relaxedHeader, signatureHeader } from "../dkim-canon.ts";
import { type HeaderField, type MessageParts } from "../../core/header-section.ts";
import { lookUpPublicKey } from "./public-key.ts";
import type { ArcOutcome } from "./results.ts";
import { BodyHashes, fieldTags, type VerifyDeps, verifySignature } from "./signature-verify.ts";

const NAMES = ["arc-authentication-results", "arc-message-signature", "arc-seal"] as const;
type ArcName = (typeof NAMES)[number];

interface ArcSet {
  readonly instance: number;
  readonly fields: Partial<Record<ArcName, { field: HeaderField; tags: Map<string, string> }>>;
}

/** RFC 8617 4.2.1: at most 50 sets. */
const MAX_SETS = 50;

class ChainError extends Error {}

/**
 * The sets by instance, checked for shape (RFC 8617 4.1, 5.2 steps 1-3):
 * each instance once, 1 to N without a gap, three fields each, cv=none on
 * the first and pass on the others, no h= in a seal, no ARC-Seal under a
 * message signature. Throws ChainError.
 */
function readChain(message: Uint8Array, parts: MessageParts): ArcSet[] {
  const sets = new Map<number, ArcSet>();
  for (const field of parts.fields) {
    const name = NAMES.find((n) => n === field.name);
    if (name === undefined) continue;
    const tags = fieldTags(message, field);
    const i = tags.get("i") ?? "";
    if (!/^[1-9]\d{0,2}$/.test(i)) throw new ChainError(`${name} with i=${i}`);
    const instance = Number(i);
    let set = sets.get(instance);
    if (set === undefined) sets.set(instance, set = { instance, fields: {} });
    if (set.fields[name]) throw new ChainError(`i=${instance} multiple ${name} values`);
    set.fields[name] = { field, tags };
  }
  const chain = [...sets.values()].sort((a, b) => a.instance - b.instance);
  if (chain.length > MAX_SETS) throw new ChainError(`chain-length=${chain.length}`);
  chain.forEach((set, index) => {
    if (set.instance !== index + 1) throw new ChainError(`i=${set.instance} expected=${index + 1}`);
    for (const name of NAMES) if (!set.fields[name]) throw new ChainError(`i=${set.instance} no ${name} set`);
    const seal = set.fields["arc-seal"]!.tags;
    const cv = seal.get("cv")?.toLowerCase();
    if (cv !== (index === 0 ? "none" : "pass")) throw new ChainError(`i=${set.instance} cv=${cv ?? ""}`);
    if (seal.has("h")) throw new ChainError(`i=${set.instance} unexpected as h`);
    if (seal.get("a")?.toLowerCase() !== "rsa-sha256") {
      throw new ChainError(`i=${set.instance} as a=${seal.get("a") ?? ""}`);
    }
    const signed = set.fields["arc-message-signature"]!.tags.get("h")?.toLowerCase().split(":") ?? [];
    if (signed.includes("arc-seal")) throw new ChainError(`i=${set.instance} invalid ams h`);
  });
  return chain;
}

/** ARC-Seal `i` over the sets 1..i (RFC 8617 5.1.1): AAR, AMS, AS of each, the last AS without its b= value. */
async function verifySeal(
  message: Uint8Array,
  chain: readonly ArcSet[],
  i: number,
  deps: VerifyDeps,
): Promise<string | undefined> {
  const data = new ByteSink(4096);
  for (const set of chain.slice(0, i)) {
    relaxedHeader(message, set.fields["arc-authentication-results"]!.field, data);
    relaxedHeader(message, set.fields["arc-message-signature"]!.field, data);
    if (set.instance < i) relaxedHeader(message, set.fields["arc-seal"]!.field, data);
  }
  const seal = chain[i - 1]!.fields["arc-seal"]!;
  signatureHeader("relaxed", message, seal.field, data);
  const name = `${seal.tags.get("s") ?? ""}._domainkey.${seal.tags.get("d") ?? ""}`;
  const key = await lookUpPublicKey("ARC", name, deps.minBitLength, deps.resolver);
  if (!key.ok) return `${key.comment} for ${name}`;
  let valid = false;
  try {
    valid = verify("sha256", data.bytes(), key.publicKey, Buffer.from(seal.tags.get("b") ?? "", "base64"));
  } catch {
    valid = false;
  }
  return valid ? undefined : `i=${i} seal signature validation failed`;
}

export async function verifyArc(
  message: Uint8Array,
  parts: MessageParts,
  bodies: BodyHashes,
  deps: VerifyDeps,
): Promise<ArcOutcome> {
  let chain: ArcSet[];
  try {
    chain = readChain(message, parts);
  } catch (error) {
    if (!(error instanceof ChainError)) throw error;
    // A chain that cannot be read is not sealed over (RFC 8617 5.1.2).
    return { result: "fail", instance: 0, sealable: false, comment: error.message };
  }
  if (chain.length === 0) return { result: "none", instance: 0, sealable: true };
  const instance = chain.length;
  // A readable chain whose signatures fail is sealed over with cv=fail (RFC 8617 5.1.2).
  const failed = (comment: string): ArcOutcome => ({ result: "fail", instance, sealable: true, comment });

  const ams = chain[instance - 1]!.fields["arc-message-signature"]!;
  const check = await verifySignature("ARC", message, parts, ams.field, ams.tags, bodies, deps);
  if (check.result !== "pass") return failed(`i=${instance} no valid signature`);
  for (let i = instance; i >= 1; i--) {
    const problem = await verifySeal(message, chain, i, deps);
    if (problem !== undefined) return failed(problem);
  }
  return { result: "pass", instance, sealable: true };
}
