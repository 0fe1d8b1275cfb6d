import type { DomainSummary } from "../core/queue-summary.ts";
import type { DestinationView } from "../http/queue.ts";
import { destinationState } from "../http/queue.ts";
import type { Session } from "./sessions.ts";
import { canSteer, CsrfField, State, Time } from "./layout.tsx";

/** The suspensions an operator picks from. */
export const SUSPEND_CHOICES = ["15m", "1h", "4h", "1d"] as const;

function Limits(props: { rules: DestinationView["rules"] }) {
  if (!props.rules) return <span class="muted">—</span>;
  return (
    <ul class="muted">
      {Object.entries(props.rules).map(([name, rule]) => (
        <li>
          {name}: <code>{typeof rule.value === "string" ? rule.value : JSON.stringify(rule.value)}</code>{" "}
          ({rule.from.level}
          {rule.from.key ? ` ${rule.from.key}` : ""})
        </li>
      ))}
    </ul>
  );
}

function Actions(props: { destination: DestinationView; session: Session }) {
  const { destination, session } = props;
  const state = destinationState(destination);
  return (
    <>
      <form class="inline" method="post" action="/destinations/suspend">
        <CsrfField session={session} />
        <input type="hidden" name="destination" value={destination.name} />
        <label class="sr-only" for={`duration-${destination.name}`}>Suspend {destination.name} for</label>
        <select name="duration" id={`duration-${destination.name}`}>
          {SUSPEND_CHOICES.map((d) => <option value={d} selected={d === "1h"}>{d}</option>)}
        </select>
        <button type="submit" class="danger" aria-label={`Suspend ${destination.name}`}>Suspend</button>
      </form>
      {(state === "suspended" || state === "backing_off") && (
        <form class="inline" method="post" action="/destinations/resume">
          <CsrfField session={session} />
          <input type="hidden" name="destination" value={destination.name} />
          <button type="submit" aria-label={`Resume ${destination.name}`}>Resume</button>
        </form>
      )}
    </>
  );
}

function DomainRows(props: { domains: readonly DomainSummary[] }) {
  return (
    <>
      {props.domains.map((d) => (
        <tr>
          <td>{d.domain}</td>
          <td class="num">{d.queued}</td>
          <td class="num">{d.deferred}</td>
          <td>
            <Time ms={d.oldest} />
          </td>
        </tr>
      ))}
    </>
  );
}

export function Destinations(
  props: { destinations: readonly DestinationView[]; unrouted: readonly DomainSummary[]; session: Session },
) {
  const steer = canSteer(props.session);
  return (
    <>
      {props.destinations.length === 0
        ? <p class="muted">No destination has taken mail since the relay started.</p>
        : (
          <table id="destinations">
            <thead>
              <tr>
                <th>Destination</th>
                <th>State</th>
                <th class="num">Queued</th>
                <th class="num">Deferred</th>
                <th class="num">In flight</th>
                <th>Oldest</th>
                <th>Limits in force</th>
                <th>Last reply</th>
                {steer && <th>Actions</th>}
              </tr>
            </thead>
            <tbody>
              {props.destinations.map((d) => (
                <tr data-destination={d.name}>
                  <td>
                    <code>{d.name}</code>
                    <div class="muted">{d.provider ?? ""} {d.mxHosts.join(", ")}</div>
                    <div class="muted">{d.domains.map((x) => x.domain).join(", ")}</div>
                  </td>
                  <td>
                    <State value={destinationState(d)} />
                    {d.suspendedUntil !== undefined && (
                      <div class="muted">
                        until <Time ms={d.suspendedUntil} />
                      </div>
                    )}
                    {d.automation && (
                      <div class="muted">
                        {d.automation.kind} by {d.automation.cause.reason}
                        {d.automation.cause.reason === "automation" ? ` (${d.automation.cause.rule})` : ""}
                      </div>
                    )}
                  </td>
                  <td class="num">{d.queued}</td>
                  <td class="num">{d.deferred}</td>
                  <td class="num">{d.inFlight}</td>
                  <td>
                    <Time ms={d.oldest} />
                  </td>
                  <td>
                    <Limits rules={d.rules} />
                  </td>
                  <td>
                    {d.lastReply
                      ? (
                        <>
                          <code>{d.lastReply.text}</code>
                          <div class="muted">
                            <Time ms={d.lastReply.at} />
                          </div>
                        </>
                      )
                      : <span class="muted">—</span>}
                    {d.lastError && <div class="state-fail">{d.lastError}</div>}
                  </td>
                  {steer && (
                    <td>
                      <Actions destination={d} session={props.session} />
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      {props.unrouted.length > 0 && (
        <>
          <h2>Pending at domains not routed yet</h2>
          <table>
            <thead>
              <tr>
                <th>Domain</th>
                <th class="num">Queued</th>
                <th class="num">Deferred</th>
                <th>Oldest</th>
              </tr>
            </thead>
            <tbody>
              <DomainRows domains={props.unrouted} />
            </tbody>
          </table>
        </>
      )}
    </>
  );
}
