/**
 * Stand-in for the suppression list's entry point (src/queue/suppressions.ts,
 * SuppressionStore.add, issue 14), which is built on another branch: the same
 * signature, so the composition root can pass the real store in once it is
 * merged. Until then no suppression is added.
 */
export type SuppressionScope =
  | { readonly kind: "global" }
  | { readonly kind: "principal"; readonly id: string }
  | { readonly kind: "domain"; readonly domain: string };

export type SuppressionReason = "hard-bounce" | "complaint" | "unsubscribe" | "manual" | "import";

export interface SuppressionAdder {
  add(entry: {
    address: string;
    scope: SuppressionScope;
    reason: SuppressionReason;
    source?: { event: string; messageId?: string };
    expiresAt?: number;
  }): Promise<void>;
}
