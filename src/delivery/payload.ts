import type { Lane } from "../core/lane.ts";
import { verpAddress, type VerpKey } from "../core/verp.ts";
import type { QueueStore } from "../queue/store.ts";
import type { Payload, Work } from "./work.ts";

/**
 * A copy of its own for each recipient in the lanes it applies to (bulk
 * mail's List-Unsubscribe, src/unsubscribe/): such a recipient is sent a
 * transaction of its own, with the body `copyFor` makes of the stored one.
 */
export interface PerRecipientCopy {
  applies(lane: Lane): boolean;
  copyFor(body: Uint8Array, recipientId: number): Promise<Uint8Array>;
}

export interface PayloadDeps {
  readonly store: Pick<QueueStore, "loadMessage">;
  /** The key of VERP return paths' tags (core/verp.ts, app/verp-key.ts). */
  readonly verpKey: VerpKey;
  readonly perRecipientCopy?: PerRecipientCopy;
}

/** The message as the work sends it: its return path, body and DSN parameters; undefined when it is gone. */
export async function loadPayload(work: Work, deps: PayloadDeps): Promise<Payload | undefined> {
  const message = await deps.store.loadMessage(work.messageId);
  if (!message) return undefined;
  return {
    messageId: message.id,
    mailFrom: returnPath(work, deps.verpKey) ?? message.mailFrom,
    recipients: work.claims.map((c) => c.address),
    body: await bodyFor(work, message.body, deps.perRecipientCopy),
    requireTls: work.claims[0]?.tlsTag === "requiretls",
    // Passed on to a next hop that advertises DSN (RFC 3461 5.2).
    dsn: {
      ret: message.dsnRet ?? undefined,
      envid: message.dsnEnvid ?? undefined,
      recipients: work.claims.map((c) => ({ notify: c.dsnNotify, orcpt: c.dsnOrcpt })),
    },
  };
}

/** The stored body, or the recipient's own copy when `copies` applies to the work's one recipient. */
async function bodyFor(work: Work, body: Uint8Array, copies: PerRecipientCopy | undefined): Promise<Uint8Array> {
  const [claim, ...others] = work.claims;
  if (!copies || !claim || others.length > 0 || !copies.applies(claim.lane)) return body;
  return await copies.copyFor(body, claim.recipientId);
}

/**
 * The envelope sender delivery uses instead of the stored one: a VERP address
 * at RELAY_BOUNCE_DOMAIN (decided at ingress, see ingress/return-path.ts) for a work
 * item of one recipient; the stored mail_from stays the submitter's.
 */
function returnPath(work: Work, key: VerpKey): string | undefined {
  const [claim, ...others] = work.claims;
  if (claim?.returnPathDomain === undefined || others.length > 0) return undefined;
  return verpAddress(work.messageId, claim.recipientId, claim.returnPathDomain, key);
}
