import type { DestinationLimits } from "./destination.ts";
import type { DestinationInfo } from "./destination-book.ts";
import type { Pacing } from "./shaping.ts";
import type { SteeredDestination } from "./steering.ts";
import type { ReportPolicy } from "./tls-report/policy.ts";
import type { RecipientResult, Transport } from "./work.ts";

/**
 * Where a domain's mail goes now: a destination (its key, name, MX hosts and
 * shaping), its limits when the plan was made, its retry schedule and how
 * to open connections to it; with `tlsReport`, the policy its sessions are
 * counted under for TLS reporting (RFC 8460). Mail that goes nowhere is
 * deferred on the `retry` schedule given (the shaping rules' default level)
 * or bounced.
 */
export type Plan =
  | DestinationPlan
  | {
    readonly kind: "bounce" | "defer";
    readonly results: (addresses: readonly string[]) => RecipientResult[];
    readonly retry: readonly number[];
  };

export interface DestinationPlan extends DestinationInfo {
  readonly kind: "destination";
  readonly limits: DestinationLimits;
  /** Message and connection rates (shaping), each the destination's own or shared (see shaping.ts); absent: none. */
  readonly pacing?: { readonly messages: Pacing; readonly connections: Pacing };
  /** At most this many recipients in one transaction: a work item each, so the message rate counts transactions. */
  readonly recipientsPerTransaction?: number;
  /** For automation and warmup: the provider and the destination's own limits; absent: the limits above. */
  readonly steering?: Pick<SteeredDestination, "provider" | "own">;
  /** Delays between attempts after a temporary failure there; the last one repeats. */
  readonly retry: readonly number[];
  readonly transport: () => Transport;
  readonly tlsReport?: ReportPolicy;
}
