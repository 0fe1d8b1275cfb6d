import type { DestinationChange } from "./destination-automation.ts";
import { limitsInFileForm } from "./throttle-limits.ts";

/** A destination's change as the event log keeps it and `GET /v1/events` shows it (no message, no recipient). */
export interface DestinationEvent {
  readonly type: DestinationChange["type"];
  readonly at: number;
  readonly data: Record<string, unknown>;
}

const time = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : null);

/**
 * The event for a change of the destination `destination` (its key), whose
 * provider is `provider`: who caused it (`reason` automation with the rule
 * and the reply, or operator), and for a throttle the limits in force (as
 * the shaping file writes them) until when, and when it ends (the last
 * recovery step); for a suspension until when (null: until resumed).
 */
export function destinationEvent(
  change: DestinationChange,
  destination: string,
  provider: string | undefined,
): DestinationEvent {
  const { cause } = change;
  const data: Record<string, unknown> = {
    destination,
    provider: provider ?? null,
    reason: cause.reason,
    rule: cause.reason === "automation" ? cause.rule : null,
    reply: cause.reason === "automation" ? cause.reply : null,
  };
  if (change.type === "destination_throttled") {
    Object.assign(data, {
      limits: limitsInFileForm(change.limits),
      until: time(change.until),
      ends: time(change.ends),
    });
  }
  if (change.type === "destination_suspended") data.until = time(change.until);
  return { type: change.type, at: change.at, data };
}
