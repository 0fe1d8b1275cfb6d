/**
 * Every DKIM-Signature of a message verified (RFC 6376 6.1), top to
 * bottom, as results in RFC 8601 2.7.1 terms.
 */
import { type MessageParts } from "../../core/header-section.ts";
import type { DkimOutcome } from "./results.ts";
import { BodyHashes, fieldTags, type VerifyDeps, verifySignature } from "./signature-verify.ts";

export async function verifyDkim(
  message: Uint8Array,
  parts: MessageParts,
  bodies: BodyHashes,
  deps: VerifyDeps,
): Promise<DkimOutcome[]> {
  const outcomes: DkimOutcome[] = [];
  for (const field of parts.fields) {
    if (field.name !== "dkim-signature") continue;
    const tags = fieldTags(message, field);
    const check = await verifySignature("DKIM", message, parts, field, tags, bodies, deps);
    outcomes.push({
      result: check.result,
      domain: tags.get("d")?.toLowerCase(),
      selector: tags.get("s"),
      algorithm: tags.get("a"),
      b: tags.get("b")?.slice(0, 8) || undefined,
      comment: check.comment,
    });
  }
  return outcomes.length > 0 ? outcomes : [{ result: "none", comment: "message not signed" }];
}
