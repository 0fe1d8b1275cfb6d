import type { RecipientState } from "./schema.ts";

/** The states a recipient in the queue is in: what the listing lists. */
export const queueStates = ["queued", "deferred", "held"] as const satisfies readonly RecipientState[];
export type QueueState = (typeof queueStates)[number];

/**
 * A place in the queue listing: the key of the last recipient a page went
 * over, in the order of the index recipients_in_queue (domain, state,
 * message id, then recipient id). The next page starts after it: a seek in
 * the index, whatever the depth (keyset paging, never OFFSET).
 */
export interface QueueCursor {
  readonly domain: string;
  readonly state: QueueState;
  readonly messageId: string;
  readonly recipientId: number;
}

/** The cursor as the API hands it out: opaque, URL-safe. */
export function encodeCursor(cursor: QueueCursor): string {
  const json = JSON.stringify([cursor.domain, cursor.state, cursor.messageId, cursor.recipientId]);
  return btoa(String.fromCharCode(...new TextEncoder().encode(json)))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A cursor from encodeCursor; undefined for anything else. */
export function decodeCursor(text: string): QueueCursor | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  let value: unknown;
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    value = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))),
    );
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 4) return undefined;
  const [domain, state, messageId, recipientId] = value as unknown[];
  if (typeof domain !== "string" || typeof messageId !== "string") return undefined;
  if (!queueStates.includes(state as QueueState)) return undefined;
  if (!Number.isSafeInteger(recipientId) || (recipientId as number) < 0) return undefined;
  return { domain, state: state as QueueState, messageId, recipientId: recipientId as number };
}
