import type { WarmupOutcome } from "../shaping/warmup-ledger.ts";
import type { Classification } from "./classify.ts";

/**
 * What a classified result counts as for warmup: a refusal for spam or
 * policy is a block (the receiver does not want the IP's mail), a temporary
 * failure a deferral. Greylisting defers every first contact, whatever the
 * IP's standing, and other permanent failures (an unknown mailbox) say
 * nothing of it either: they count for nothing.
 */
export function warmupOutcomeOf(result: Classification): WarmupOutcome | undefined {
  switch (result.disposition) {
    case "delivered":
      return "delivered";
    case "deferred":
      return result.category === "greylisting" ? undefined : "deferred";
    case "bounced":
      return result.category === "spam-related" || result.category === "policy-related" ? "blocked" : undefined;
  }
}
