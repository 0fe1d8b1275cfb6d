import type { NewSuppression } from "./suppressions.ts";

/**
 * The global suppression a hard bounce calls for when its category is one of
 * RELAY_SUPPRESS_BOUNCE_CATEGORIES (`categories`); `event` is the bounced
 * event's data. None for any other bounce.
 */
export function hardBounceSuppression(
  categories: readonly string[],
  messageId: string,
  address: string,
  event: Record<string, unknown>,
): NewSuppression[] {
  const hard = event.bounce_type === "hard";
  if (!hard || !categories.includes(String(event.category))) return [];
  return [{ address, scope: { kind: "global" }, reason: "hard-bounce", source: { event: "bounced", messageId } }];
}
