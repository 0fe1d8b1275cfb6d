/**
 * The suppression list's entry point as issue 14 names it (src/queue/suppressions.ts,
 * `SuppressionStore.add`), written here until that store is merged: the
 * same signature, so the store itself is what gets injected.
 */
export type SuppressionScope =
  | { readonly kind: "global" }
  | { readonly kind: "principal"; readonly id: string }
  | { readonly kind: "domain"; readonly domain: string };

export type SuppressionReason = "hard-bounce" | "complaint" | "unsubscribe" | "manual" | "import";

export interface SuppressionEntry {
  readonly address: string;
  readonly scope: SuppressionScope;
  readonly reason: SuppressionReason;
  readonly source?: { readonly event: string; readonly messageId?: string };
  readonly expiresAt?: number;
}

export interface SuppressionAdder {
  add(entry: SuppressionEntry): Promise<void>;
}
