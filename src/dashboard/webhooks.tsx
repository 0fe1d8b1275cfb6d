import { Time } from "./layout.tsx";

/** One webhook endpoint as the dashboard shows it. */
export interface WebhookSummary {
  readonly id: string;
  readonly url: string;
  readonly events: readonly string[];
  /** Deliveries waiting to be sent (or retried). */
  readonly backlog: number;
  /** Deliveries given up on, kept to be replayed. */
  readonly deadLetters: number;
  readonly lastDeliveryAt?: number;
  readonly lastError?: string;
}

/**
 * What the webhooks page needs of the webhook service; the page (and its
 * entry in the navigation) is served only when the root passes one.
 */
export interface WebhookPageDeps {
  list(): Promise<readonly WebhookSummary[]>;
}

export function Webhooks(props: { webhooks: readonly WebhookSummary[] }) {
  if (props.webhooks.length === 0) return <p class="muted">No webhook endpoint yet.</p>;
  return (
    <>
      <p class="muted">
        Backlog, dead letters, last delivery and last error are this node's: in a fleet, every node sends the endpoints
        its own events.
      </p>
      <table id="webhooks">
        <thead>
          <tr>
            <th>Endpoint</th>
            <th>Events</th>
            <th class="num">Backlog</th>
            <th class="num">Dead letters</th>
            <th>Last delivery</th>
            <th>Last error</th>
          </tr>
        </thead>
        <tbody>
          {props.webhooks.map((w) => (
            <tr>
              <td>
                <code>{w.url}</code>
                <div class="muted mono">{w.id}</div>
              </td>
              <td>{w.events.join(", ") || "all"}</td>
              <td class="num">{w.backlog}</td>
              <td class="num">{w.deadLetters}</td>
              <td>
                <Time ms={w.lastDeliveryAt} />
              </td>
              <td>{w.lastError ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
