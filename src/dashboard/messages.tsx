import type { MessageHit } from "../queue/message-search.ts";
import type { QueueStore } from "../queue/store.ts";
import { State, Time } from "./layout.tsx";

export type MessageView = NonNullable<Awaited<ReturnType<QueueStore["messageView"]>>>;

/** Events that are an attempt's outcome: each shows the reply it got. */
const ATTEMPT_EVENTS = new Set(["delivered", "deferred", "bounced", "expired"]);

export function MessageSearchForm(props: { query: string }) {
  return (
    <form method="get" action="/messages" role="search">
      <label for="q">Message id, address (recipient or sender) or @domain</label>{" "}
      <input id="q" name="q" type="search" value={props.query} size={40} /> <button type="submit">Search</button>
    </form>
  );
}

export function MessageList(props: { query: string; hits: readonly MessageHit[]; limit: number }) {
  if (props.query === "") return <p class="muted">Search for a message to see it with every attempt.</p>;
  if (props.hits.length === 0) return <p>No message matches {JSON.stringify(props.query)}.</p>;
  return (
    <>
      <table id="message-results">
        <thead>
          <tr>
            <th>Message</th>
            <th>Received</th>
            <th>From</th>
            <th>Recipient</th>
            <th>State</th>
            <th class="num">Attempts</th>
            <th>Last reply</th>
          </tr>
        </thead>
        <tbody>
          {props.hits.map((h) => (
            <tr>
              <td>
                <a class="mono" href={`/messages/${h.messageId}`}>{h.messageId}</a>
              </td>
              <td>
                <Time ms={h.createdAt} />
              </td>
              <td>{h.mailFrom || "<>"}</td>
              <td>{h.address}</td>
              <td>
                <State value={h.state} />
              </td>
              <td class="num">{h.attempts}</td>
              <td>{h.lastReply ? <code>{h.lastReply}</code> : <span class="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {props.hits.length === props.limit && <p class="muted">The newest {props.limit} shown.</p>}
    </>
  );
}

function EventData(props: { data: Readonly<Record<string, unknown>> }) {
  const entries = Object.entries(props.data);
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <dl class="fields">
      {entries.map(([key, value]) => (
        <>
          <dt>{key}</dt>
          <dd>
            <code>{typeof value === "string" ? value : JSON.stringify(value)}</code>
          </dd>
        </>
      ))}
    </dl>
  );
}

export function MessageDetail(props: { view: MessageView }) {
  const { message, recipients, events } = props.view;
  const attempts = events.filter((e) => ATTEMPT_EVENTS.has(e.type));
  return (
    <>
      <dl class="fields" id="envelope">
        <dt>Id</dt>
        <dd class="mono">{message.id}</dd>
        <dt>Received</dt>
        <dd>
          <Time ms={message.createdAt} />
        </dd>
        <dt>Envelope sender</dt>
        <dd>{message.mailFrom || "<> (null sender)"}</dd>
        <dt>Source</dt>
        <dd>{message.source}</dd>
        <dt>Size</dt>
        <dd>{message.size.toLocaleString("en")} bytes</dd>
        {message.tags && message.tags.length > 0 && (
          <>
            <dt>Tags</dt>
            <dd>{message.tags.join(", ")}</dd>
          </>
        )}
      </dl>
      <h2>Recipients</h2>
      <table id="recipients">
        <thead>
          <tr>
            <th>Recipient</th>
            <th>State</th>
            <th>Priority</th>
            <th class="num">Attempts</th>
            <th>Next attempt</th>
            <th>Last reply</th>
          </tr>
        </thead>
        <tbody>
          {recipients.map((r) => (
            <tr>
              <td>{r.address}</td>
              <td>
                <State value={r.state} />
              </td>
              <td>{r.lane}</td>
              <td class="num">{r.attempts}</td>
              <td>{r.state === "queued" || r.state === "deferred" ? <Time ms={r.nextAttemptAt} /> : "—"}</td>
              <td>{r.lastReply ? <code>{r.lastReply}</code> : <span class="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Attempts</h2>
      {attempts.length === 0 ? <p class="muted">Not attempted yet.</p> : (
        <table id="attempts">
          <thead>
            <tr>
              <th>When</th>
              <th>Recipient</th>
              <th>Outcome</th>
              <th>Reply and details</th>
            </tr>
          </thead>
          <tbody>
            {attempts.map((e) => (
              <tr>
                <td>
                  <Time ms={e.at} />
                </td>
                <td>{e.recipient}</td>
                <td>
                  <State value={e.type} />
                </td>
                <td>
                  <EventData data={e.data} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Every event</h2>
      <table id="events">
        <thead>
          <tr>
            <th>When</th>
            <th>Event</th>
            <th>Recipient</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr>
              <td>
                <Time ms={e.at} />
              </td>
              <td>{e.type}</td>
              <td>{e.recipient ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
