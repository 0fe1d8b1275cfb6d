/**
 * Inbound authentication for mail the relay receives from outside: check
 * it, say so in an Authentication-Results field (RFC 8601), and — when a
 * sealing key is available — add an ARC set for the next hop (RFC 8617).
 */
import type { Clock } from "../../core/clock.ts";
import { prependFields } from "../../core/header-section.ts";
import { arcSeal, type ArcSealKey } from "./arc-seal.ts";
import { checkInbound, type InboundMessage } from "./check.ts";
import { removeForgedAuthResults } from "./headers.ts";
import type { InboundResolver } from "../mailauth-resolver.ts";
import { type InboundResults, resultsRecord } from "./results.ts";

export { arcSeal, type ArcSealInput, type ArcSealKey } from "./arc-seal.ts";
export { checkInbound, type InboundDeps, type InboundMessage } from "./check.ts";
export { authservId, removeForgedAuthResults } from "./headers.ts";
export { type InboundResolver, type MailauthResolver, mailauthResolver } from "../mailauth-resolver.ts";
export * from "./results.ts";

export interface InboundAuthDeps {
  readonly resolver: InboundResolver;
  readonly clock: Clock;
  /** Our host name: the authserv-id. */
  readonly hostname: string;
  /**
   * The key to seal with, asked per message; undefined (or no function) means
   * no ARC set is added.
   */
  readonly arcKey?: () => Promise<ArcSealKey | undefined>;
  /** Told when sealing fails; the message goes on unsealed. */
  readonly log?: (level: "warn", message: string, fields: Record<string, unknown>) => void;
}

export interface InboundEnvelope {
  readonly clientIp: string;
  readonly heloName?: string;
  /** "" or null for the null reverse-path. */
  readonly mailFrom: string | null;
}

export interface Stamped {
  /** The message to queue: forged Authentication-Results removed, ours (and the ARC set) on top. */
  readonly message: Uint8Array;
  readonly results: InboundResults;
  /** The results as plain data for the `received` event. */
  readonly record: Record<string, unknown>;
  readonly sealed: boolean;
}

export interface InboundAuth {
  stamp(message: Uint8Array, envelope: InboundEnvelope): Promise<Stamped>;
}

export function createInboundAuth(deps: InboundAuthDeps): InboundAuth {
  const { hostname } = deps;
  return {
    async stamp(message, envelope) {
      const input: InboundMessage = { message, hostname, ...envelope };
      const results = await checkInbound(input, deps);
      const { message: cleaned } = removeForgedAuthResults(message, hostname);
      const fields = [results.authenticationResults];
      let sealed = false;
      const key = deps.arcKey ? await deps.arcKey() : undefined;
      if (key && results.arc.sealable) {
        try {
          const authResults = results.authenticationResults.slice("Authentication-Results:".length).trim();
          const cv = results.arc.result === "pass" ? "pass" : results.arc.result === "none" ? "none" : "fail";
          fields.unshift(...(await arcSeal(cleaned, { authResults, cv }, key, deps)));
          sealed = true;
        } catch (error) {
          deps.log?.("warn", "ARC sealing failed; forwarding unsealed", {
            error: String(error),
            domain: key.domain,
            selector: key.selector,
          });
        }
      }
      return {
        message: prependFields(cleaned, fields),
        results,
        record: { ...resultsRecord(results), ...(sealed ? { arc_sealed: true } : {}) },
        sealed,
      };
    },
  };
}
