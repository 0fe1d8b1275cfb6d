/**
 * An entry of the suppression list as the API and a CSV import give it:
 * text fields, each checked, every problem reported at once.
 */
import * as v from "valibot";
import { parseMailbox } from "../core/address.ts";
import { type NewSuppression, parseScope, suppressionReasons, type SuppressionScope } from "./suppressions.ts";

export const suppressionInputSchema = v.object({
  address: v.pipe(
    v.string("expected an email address"),
    v.check(
      (text) => parseMailbox(text.trim(), { utf8: true }).ok,
      "expected an email address such as bob@example.com",
    ),
    v.description("the address; compared in lower case, local part included"),
  ),
  scope: v.optional(
    v.pipe(
      v.string(),
      v.check((text) => parseScope(text) !== undefined, "expected global, principal:ID or domain:DOMAIN"),
      v.description(
        "global (the default): every sender; principal:ID: mail from one API key (its id), SMTP user or admin; " +
          "domain:DOMAIN: mail from one sending domain",
      ),
    ),
  ),
  reason: v.optional(
    v.pipe(v.picklist(suppressionReasons, `expected one of ${suppressionReasons.join(", ")}`)),
  ),
  expires_at: v.optional(
    v.pipe(
      v.string(),
      v.check((text) => !Number.isNaN(Date.parse(text)), "expected an ISO 8601 time such as 2027-01-31T00:00:00Z"),
      v.description("from then on the entry suppresses nothing; absent: never expires"),
    ),
  ),
});

export type SuppressionInput = v.InferOutput<typeof suppressionInputSchema>;

/** The entry an input names; `reason` when the input gives none. */
export function suppressionOf(input: SuppressionInput, reason: NewSuppression["reason"]): NewSuppression {
  const scope: SuppressionScope = input.scope === undefined ? { kind: "global" } : parseScope(input.scope)!;
  return {
    address: input.address.trim(),
    scope,
    reason: input.reason ?? reason,
    ...(input.expires_at === undefined ? {} : { expiresAt: Date.parse(input.expires_at) }),
  };
}
