import type { FleetView } from "../fleet/fleet-view.ts";
import { formatElapsed, State, Time, writesWaiting } from "./layout.tsx";

/** This node's link to the shared server: alone, shared, or cut off since when. */
function Link(props: { fleet: FleetView }) {
  const { fleet } = props;
  if (!fleet.shared) {
    return (
      <p id="fleet-link">
        This node ({fleet.self}) runs alone: it shares its state with no other node (no{" "}
        <code>RELAY_SHARED_DB_URL</code>).
      </p>
    );
  }
  const waiting = `${writesWaiting(fleet.outbox)} in its outbox`;
  if (fleet.partitionedSince !== undefined) {
    return (
      <p id="fleet-link">
        This node ({fleet.self}) is cut off from the fleet's shared database since <Time ms={fleet.partitionedSince} />
        {" "}
        UTC: it works from its replica; {waiting}.
      </p>
    );
  }
  return (
    <p id="fleet-link">
      This node ({fleet.self}) shares the fleet's state through the shared database; {waiting}.
    </p>
  );
}

/** Between the node's id and "(this node)": a literal space at the start of JSX text would be trimmed by the formatter. */
const SPACE = " ";

/** The fleet's nodes as GET /v1/fleet lists them. */
export function Fleet(props: { fleet: FleetView }) {
  const { fleet } = props;
  return (
    <>
      <Link fleet={fleet} />
      <p class="muted">
        Read from this node's replica of the shared state. A node silent for RELAY_NODE_DEAD_AFTER is down.
      </p>
      <table id="fleet">
        <thead>
          <tr>
            <th>Node</th>
            <th>Status</th>
            <th>Source IP</th>
            <th>Host name</th>
            <th>Version</th>
            <th>Started</th>
            <th>Last heartbeat</th>
            <th class="num">Queue depth</th>
          </tr>
        </thead>
        <tbody>
          {fleet.nodes.map((n) => (
            <tr data-node={n.id} class={n.self ? "self" : undefined}>
              <td>
                <span class="mono">{n.id}</span>
                {n.self && <span class="muted">{`${SPACE}(this node)`}</span>}
              </td>
              <td>
                <State value={n.status} />
              </td>
              <td class="mono">{n.sourceIp ?? "—"}</td>
              <td>{n.hostname}</td>
              <td>{n.version}</td>
              <td>
                <Time ms={n.startedAt} />
              </td>
              <td>
                <Time ms={n.heartbeatAt} /> <span class="muted">({formatElapsed(fleet.now - n.heartbeatAt)} ago)</span>
              </td>
              <td class="num">{n.queueDepth}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
