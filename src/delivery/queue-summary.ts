import { timeOfId } from "../core/id.ts";
import type { DestinationSummary, DomainSummary, QueueSummary } from "../core/queue-summary.ts";
import type { DomainBacklog } from "../queue/records.ts";
import type { QueueByDomain } from "../queue/queue-by-domain.ts";
import { showLimits } from "../shaping/show.ts";
import type { DestinationState } from "./operator-commands.ts";

/** What automation holds a destination under, as the summary shows it. */
type Automation = NonNullable<DestinationState["automation"]>;

/** Domains listed outside the destinations, at most (the first in name order). */
const MAX_DOMAINS = 1000;
/** Destinations listed, at most: every suspended one, and those routed to most recently. */
const MAX_DESTINATIONS = 1000;
/** Each count stops here, so that a summary costs at most this much per domain and state. */
export const COUNT_CAP = 1_000_000;

const summaryOf = (b: DomainBacklog): DomainSummary => ({
  domain: b.domain,
  queued: b.queued,
  deferred: b.deferred,
  held: b.held,
  oldest: timeOfId(b.oldestMessageId),
});

/**
 * The queue by destination: what the scheduler knows of each (rules, state,
 * last reply, what is in flight) and the pending recipients of its domains
 * from the database; then the domains with pending recipients that no
 * destination has taken mail for since the start (deferred before a
 * restart, or not due yet). A domain that went to two destinations (mail
 * under REQUIRETLS, say) is counted with each. At most MAX_DESTINATIONS of
 * `states` are listed: the suspended ones and the most recently routed.
 */
export async function queueSummary(
  states: readonly DestinationState[],
  queue: Pick<QueueByDomain, "backlog">,
): Promise<QueueSummary<Automation>> {
  // States come least recently routed first.
  const suspended = states.filter((s) => s.suspension);
  const others = states.filter((s) => !s.suspension);
  const destinations = [
    ...suspended,
    ...others.slice(Math.max(0, others.length - MAX_DESTINATIONS + suspended.length)),
  ];
  const routed = [...new Set(destinations.flatMap((d) => d.domains))];
  const [known, all] = await Promise.all([
    queue.backlog({ domains: routed }, COUNT_CAP),
    queue.backlog({ limit: MAX_DOMAINS }, COUNT_CAP),
  ]);
  const byDomain = new Map(known.map((b) => [b.domain, summaryOf(b)]));
  const listed = destinations.map((state): DestinationSummary<Automation> => {
    const domains = state.domains.flatMap((d) => byDomain.get(d) ?? []);
    const oldest = domains.length === 0 ? undefined : Math.min(...domains.map((d) => d.oldest));
    const shaping = state.info.shaping();
    return {
      name: state.info.name,
      ...(shaping?.rules.provider === undefined ? {} : { provider: shaping.rules.provider }),
      mxHosts: state.info.mxHosts,
      ...(shaping ? { rules: showLimits(shaping.rules) } : {}),
      ...(state.suspension ? { suspendedUntil: state.suspension.until } : {}),
      ...(state.backoffUntil === undefined ? {} : { backoffUntil: state.backoffUntil }),
      ...(state.automation ? { automation: state.automation } : {}),
      ...(state.lastError === undefined ? {} : { lastError: state.lastError }),
      ...(state.lastReply ? { lastReply: state.lastReply } : {}),
      queued: domains.reduce((n, d) => n + d.queued, 0),
      deferred: domains.reduce((n, d) => n + d.deferred, 0),
      held: domains.reduce((n, d) => n + d.held, 0),
      inFlight: state.inFlight,
      ...(oldest === undefined ? {} : { oldest }),
      domains,
    };
  });
  const backlog = (d: DestinationSummary<Automation>) => d.queued + d.deferred + d.held;
  listed.sort((a, b) => backlog(b) - backlog(a) || a.name.localeCompare(b.name));
  const routedSet = new Set(routed);
  return {
    destinations: listed,
    domains: all.slice(0, MAX_DOMAINS).filter((b) => !routedSet.has(b.domain)).map(summaryOf),
    truncated: all.length > MAX_DOMAINS || destinations.length < states.length,
  };
}
