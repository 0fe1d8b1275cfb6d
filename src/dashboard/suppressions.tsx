import { formatScope, type Suppression } from "../queue/suppressions.ts";
import type { Session } from "./sessions.ts";
import { canSteer, CsrfField, Time } from "./layout.tsx";

export function Suppressions(
  props: { address: string; entries: readonly Suppression[]; next?: string; session: Session },
) {
  const steer = canSteer(props.session);
  return (
    <>
      <form method="get" action="/suppressions" role="search">
        <label for="address">Address</label> <input id="address" name="address" type="search" value={props.address} />
        {" "}
        <button type="submit">Search</button>
      </form>
      {props.entries.length === 0
        ? <p>{props.address ? `${props.address} is not on the suppression list.` : "The suppression list is empty."}</p>
        : (
          <table id="suppressions">
            <thead>
              <tr>
                <th>Address</th>
                <th>Scope</th>
                <th>Reason</th>
                <th>Source</th>
                <th>Added</th>
                <th>Expires</th>
                {steer && <th>Actions</th>}
              </tr>
            </thead>
            <tbody>
              {props.entries.map((e) => (
                <tr>
                  <td>{e.address}</td>
                  <td>{formatScope(e.scope)}</td>
                  <td>{e.reason}</td>
                  <td>
                    {e.source
                      ? (
                        <>
                          {e.source.event}{" "}
                          {e.source.messageId && <a href={`/messages/${e.source.messageId}`}>message</a>}
                        </>
                      )
                      : "—"}
                  </td>
                  <td>
                    <Time ms={e.createdAt} />
                  </td>
                  <td>
                    <Time ms={e.expiresAt} />
                  </td>
                  {steer && (
                    <td>
                      <form class="inline" method="post" action="/suppressions/remove">
                        <CsrfField session={props.session} />
                        <input type="hidden" name="address" value={e.address} />
                        <input type="hidden" name="scope" value={formatScope(e.scope)} />
                        <button type="submit" class="secondary" aria-label={`Remove ${e.address}`}>Remove</button>
                      </form>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      {props.next && (
        <p>
          <a href={`/suppressions?${new URLSearchParams({ address: props.address, cursor: props.next })}`}>Next page</a>
        </p>
      )}
    </>
  );
}
