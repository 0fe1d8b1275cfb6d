import type { DomainView } from "../auth/domains.ts";
import { State, Time } from "./layout.tsx";

/** Sending domains with their keys and what the last DNS check found per record. */
export function Domains(props: { domains: readonly DomainView[] }) {
  if (props.domains.length === 0) {
    return (
      <p class="muted">
        No sending domain yet: <code>relay domains add example.com</code>.
      </p>
    );
  }
  return (
    <>
      {props.domains.map((d) => (
        <section aria-labelledby={`domain-${d.domain}`}>
          <h2 id={`domain-${d.domain}`}>
            {d.domain} {d.lastCheck ? <State value={d.lastCheck.ok ? "pass" : "fail"} /> : <State value="unchecked" />}
          </h2>
          <p class="muted">
            Keys: {d.keys.map((k) => `${k.selector} (${k.algorithm}, ${k.state})`).join(", ") || "none"}. Verified:{" "}
            <Time ms={d.verifiedAt} />. Last checked:{" "}
            <Time ms={d.lastCheck ? Date.parse(d.lastCheck.checkedAt) : null} />.
          </p>
          {d.lastCheck && d.lastCheck.verdict.length > 0 && (
            <ul>
              {d.lastCheck.verdict.map((line) => <li>{line}</li>)}
            </ul>
          )}
          {d.lastCheck && (
            <table>
              <thead>
                <tr>
                  <th>Record</th>
                  <th>Name</th>
                  <th>Status</th>
                  <th>Detail</th>
                </tr>
              </thead>
              <tbody>
                {d.lastCheck.records.map((r) => (
                  <tr>
                    <td>
                      {r.purpose}
                      {r.required ? "" : " (optional)"}
                    </td>
                    <td>
                      <code>{r.name}</code>
                    </td>
                    <td>
                      <State value={r.status} />
                    </td>
                    <td>
                      {r.detail}
                      {r.fix && <div class="muted">Fix: {r.fix}</div>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      ))}
    </>
  );
}
