import { marks } from "./queue-states.ts";

/**
 * Which recipients an operator's action is for: every one at a
 * destination's recipient domains, every one of a message, or one recipient
 * of a message (its address, in any case).
 */
export type RecipientSelector =
  | { readonly domains: readonly string[] }
  | { readonly messageId: string; readonly address?: string };

/** The selector as a WHERE term on `recipients`; undefined when it selects nothing (no domains). */
export function selectorSql(at: RecipientSelector): { sql: string; args: string[] } | undefined {
  if ("domains" in at) {
    if (at.domains.length === 0) return undefined;
    return { sql: `domain IN (${marks(at.domains.length)})`, args: [...at.domains] };
  }
  if (at.address === undefined) return { sql: "message_id = ?", args: [at.messageId] };
  return { sql: "message_id = ? AND lower(address) = lower(?)", args: [at.messageId, at.address] };
}
