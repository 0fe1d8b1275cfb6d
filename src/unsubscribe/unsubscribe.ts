/**
 * What an unsubscribe does, however it came (a one-click POST, the
 * confirmation page's button, a mail to the mailto address): the
 * recipient's `unsubscribed` event, once, and its address suppressed for
 * the message's sending domain, so that its next bulk mail from that sender
 * is not sent (issue 14).
 */
import { domainOf } from "../core/address.ts";
import type { UnsubscribeStore } from "../queue/unsubscribes.ts";
import { mailtoToken } from "./list-headers.ts";
import type { SuppressionScope, SuppressionStore } from "../queue/suppressions.ts";
import type { UnsubscribeTokens } from "./token.ts";

/** unknown: not a token of ours, or its message is gone; nothing changed. */
export type UnsubscribeResult = "unsubscribed" | "already" | "unknown";

export type UnsubscribeVia = "one-click" | "page" | "mail";

export interface UnsubscriberDeps {
  readonly tokens: UnsubscribeTokens;
  readonly store: Pick<UnsubscribeStore, "target" | "recordUnsubscribed">;
  /** The suppression list: an unsubscribe puts the address on it for the sending domain. */
  readonly suppressions: Pick<SuppressionStore, "add">;
  /** RELAY_BOUNCE_DOMAIN, where the mailto addresses are. */
  readonly bounceDomain?: string;
}

export class Unsubscriber {
  constructor(private readonly deps: UnsubscriberDeps) {}

  /** Whether `token` is one of ours for a recipient still known (the confirmation page asks before it offers the button). */
  async knows(token: string): Promise<boolean> {
    const recipientId = this.deps.tokens.recipientOf(token);
    return recipientId !== undefined && (await this.deps.store.target(recipientId)) !== undefined;
  }

  async unsubscribeByToken(token: string, via: UnsubscribeVia): Promise<UnsubscribeResult> {
    const recipientId = this.deps.tokens.recipientOf(token);
    if (recipientId === undefined) return "unknown";
    const target = await this.deps.store.target(recipientId);
    if (!target) return "unknown";
    const recorded = await this.deps.store.recordUnsubscribed(target, { via });
    // Added again on a repeat too: an entry removed by hand since is the operator's call, but a lost add is not.
    await this.deps.suppressions.add({
      address: target.address,
      scope: sendingDomainScope(target.mailFrom),
      reason: "unsubscribe",
      source: { event: "unsubscribed", messageId: target.messageId },
    });
    return recorded ? "unsubscribed" : "already";
  }

  /**
   * A mail to `unsubscribe+<token>@RELAY_BOUNCE_DOMAIN` (RFC 2369 3.2's
   * mailto): `rcpt` is the envelope recipient. "unknown" for any other address.
   */
  async unsubscribeByMail(rcpt: string): Promise<UnsubscribeResult> {
    const domain = this.deps.bounceDomain;
    const token = domain === undefined ? undefined : mailtoToken(rcpt, domain);
    return token === undefined ? "unknown" : await this.unsubscribeByToken(token, "mail");
  }
}

/** The domain of the message's envelope sender; global for the null reverse-path, which names none. */
function sendingDomainScope(mailFrom: string): SuppressionScope {
  return mailFrom === "" ? { kind: "global" } : { kind: "domain", domain: domainOf(mailFrom) };
}
