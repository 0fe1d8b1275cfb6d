/**
 * List-Unsubscribe on bulk mail, added per recipient when a copy leaves
 * (docs: "Unsubscribe"). A message is stored and signed once at ingress for
 * all its recipients, but each recipient needs its own token; so delivery
 * sends each bulk recipient a transaction of its own (as it does for VERP)
 * and asks this module for that copy: the two fields on top, and above them
 * a DKIM signature that covers them (RFC 8058 4 requires it) with the same
 * keys that signed the message at ingress. The ingress signature stays valid:
 * it names neither field, and fields added above a message break no
 * signature that does not name them (RFC 6376 5.4).
 */
import { dkimSignatures, existingSignatures, type SigningKey } from "../auth/dkim-sign.ts";
import { fromDomain } from "../auth/from-domain.ts";
import type { Clock } from "../core/clock.ts";
import { hasHeader, prependFields } from "../core/header-section.ts";
import type { Lane } from "../core/lane.ts";
import { errorText, type Logger } from "../core/log.ts";
import { listUnsubscribeFields, type UnsubscribeAddresses } from "./list-headers.ts";
import type { UnsubscribeTokens } from "./token.ts";

export interface ListUnsubscribeDeps {
  readonly tokens: UnsubscribeTokens;
  readonly addresses: UnsubscribeAddresses;
  /** The active DKIM keys of a sending domain (DomainService.signingKeys). */
  readonly signingKeys: (domain: string) => Promise<readonly SigningKey[]>;
  readonly clock: Clock;
  readonly log: Logger;
}

export class ListUnsubscribe {
  private toldNoAddress = false;

  constructor(private readonly deps: ListUnsubscribeDeps) {}

  /**
   * Whether a recipient in this lane gets a copy of its own: bulk, when there
   * is a link or an address to give it. Bulk mail with neither is sent as it
   * is, and the log says so once.
   */
  applies(lane: Lane): boolean {
    if (lane !== "bulk") return false;
    const { publicUrl, bounceDomain } = this.deps.addresses;
    if (publicUrl !== undefined || bounceDomain !== undefined) return true;
    if (!this.toldNoAddress) {
      this.toldNoAddress = true;
      this.deps.log("warn", "bulk mail is sent without List-Unsubscribe: set RELAY_PUBLIC_URL or RELAY_BOUNCE_DOMAIN");
    }
    return false;
  }

  /**
   * The copy of `message` for one recipient. A message that brings its own
   * List-Unsubscribe is the sender's to manage and goes unchanged.
   */
  async copyFor(message: Uint8Array, recipientId: number): Promise<Uint8Array> {
    if (hasHeader(message, "List-Unsubscribe")) return message;
    const fields = listUnsubscribeFields(this.deps.tokens.tokenFor(recipientId), this.deps.addresses);
    const copy = prependFields(message, fields);
    const domain = fromDomain(message);
    // Signed again only what ingress signed: a From domain of ours whose key already signed the message.
    if (domain === undefined || ![...existingSignatures(message)].some((ds) => ds.startsWith(`${domain} `))) {
      return copy;
    }
    try {
      const keys = await this.deps.signingKeys(domain);
      return prependFields(copy, dkimSignatures(copy, keys, this.deps.clock.now()));
    } catch (error) {
      this.deps.log("warn", "DKIM signing of List-Unsubscribe failed; the copy goes with the ingress signature only", {
        domain,
        error: errorText(error),
      });
      return copy;
    }
  }
}
