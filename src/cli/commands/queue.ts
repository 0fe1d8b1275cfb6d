// deno-lint-ignore-file no-explicit-any -- the API's JSON answers, printed as they come
import { readControlFile } from "../../app/control-file.ts";
import { parseDuration } from "../../core/duration.ts";
import { UsageError } from "../../core/errors.ts";
import type { Command, CommandContext } from "../command.ts";
import { printTable } from "./users.ts";

const USAGE = `Usage:
  relay queue summary [--json]
  relay queue suspend DESTINATION --for DURATION
  relay queue resume DESTINATION
  relay queue retry DESTINATION
  relay queue bounce DESTINATION

Inspect and steer the running relay's queue by destination. DESTINATION is
a name from "relay queue summary", or a recipient domain: the destination
its mail goes to now (every domain at the same MX hosts shares it).

  summary  each destination: state (normal, suspended until, backing off
           until), recipients queued, deferred and in flight, the oldest,
           the last reply; then domains with pending mail no destination
           has taken yet. --json prints GET /v1/queue's answer.
  suspend  attempt nothing there for DURATION (30m, 2h, 1d); what it holds
           and what comes meanwhile waits, no attempt counted. A relay
           restart keeps it.
  resume   end the suspension (and any pause after failures): what it held
           and every deferred recipient of its domains is due now.
  retry    every deferred recipient of its domains is due now.
  bounce   every recipient queued for it bounces now (a DSN per NOTIFY).

These commands talk to the relay serving from this RELAY_DATA_DIR, through
its HTTP API, with the URL and token it writes to control.json there at
start (the running node holds the suspensions and connections).

Options: --env-file FILE loads RELAY_* defaults from a file.`;

const ACTIONS = ["summary", "suspend", "resume", "retry", "bounce"];

export const queueCommand: Command = {
  name: "queue",
  takesArguments: true,
  summary: "the running relay's queue by destination: summary, suspend DEST --for D, resume, retry, bounce",
  usage: USAGE,
  options: { for: { type: "string" }, json: { type: "boolean" } },
  async run(context) {
    const [action, ...rest] = context.positionals;
    if (action === undefined || !ACTIONS.includes(action)) {
      const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
      throw new UsageError([`queue: ${what}: expected ${ACTIONS.join(", ")}; see "relay queue --help"`]);
    }
    if (context.options.json !== undefined && action !== "summary") {
      throw new UsageError([`queue ${action}: --json does not apply`]);
    }
    if (context.options.for !== undefined && action !== "suspend") {
      throw new UsageError([`queue ${action}: --for does not apply`]);
    }
    if (action === "summary") {
      if (rest.length > 0) throw new UsageError([`queue summary: unexpected argument ${JSON.stringify(rest[0])}`]);
      return summary(context);
    }
    if (rest.length !== 1) throw new UsageError([`expected: relay queue ${action} DESTINATION`]);
    let body: unknown;
    if (action === "suspend") {
      const duration = context.options.for;
      if (typeof duration !== "string" || !((parseDuration(duration) ?? 0) > 0)) {
        throw new UsageError(["queue suspend: --for: expected a duration such as 30m, 2h or 1d"]);
      }
      body = { duration };
    }
    const answer = await call(context, "POST", `/v1/queue/${encodeURIComponent(rest[0]!)}/${action}`, body);
    if (answer === undefined) return 1;
    context.print(describeSteering(action, answer));
    return 0;
  },
};

function describeSteering(action: string, answer: any): string {
  switch (action) {
    case "suspend":
      return `relay: suspended ${answer.name} until ${answer.suspended_until}`;
    case "resume":
      return `relay: resumed ${answer.name}; ${answer.due_now} recipient(s) due now`;
    case "retry":
      return `relay: ${answer.due_now} recipient(s) of ${answer.name} due now`;
    default:
      return `relay: bounced ${answer.bounced} recipient(s) of ${answer.name}`;
  }
}

async function summary(context: CommandContext): Promise<number> {
  const answer = await call(context, "GET", "/v1/queue");
  if (answer === undefined) return 1;
  if (context.options.json) {
    context.print(JSON.stringify(answer));
    return 0;
  }
  const rows = [["DESTINATION", "STATE", "QUEUED", "DEFERRED", "IN FLIGHT", "OLDEST", "LAST REPLY"]];
  for (const d of answer.destinations) {
    const state = d.state === "suspended"
      ? `suspended until ${d.suspended_until ?? d.automation?.until}`
      : d.state === "backing_off"
      ? `backing off until ${d.backoff_until}`
      : d.state === "throttled"
      ? `throttled until ${d.automation?.until} (${d.automation?.rule})`
      : "normal";
    rows.push([
      d.name,
      state,
      String(d.queued),
      String(d.deferred),
      String(d.in_flight),
      d.oldest ?? "-",
      d.last_reply?.text ?? d.last_error ?? "-",
    ]);
  }
  for (const d of answer.domains) {
    rows.push([d.domain, "not routed yet", String(d.queued), String(d.deferred), "0", d.oldest, "-"]);
  }
  if (rows.length === 1) context.print("relay: the queue is empty and no destination is known");
  else printTable(context, rows);
  if (answer.truncated) context.print("relay: more domains have pending mail than listed");
  return 0;
}

/** One request to the running relay; undefined (the problem told on stderr) when it fails. */
async function call(context: CommandContext, method: string, path: string, body?: unknown): Promise<any> {
  const { dataDir } = context.config();
  const access = readControlFile(dataDir);
  if ("missing" in access) {
    console.error(`relay: no running relay serves from ${dataDir}: ${access.missing} (relay serve writes it at start)`);
    return undefined;
  }
  let response: Response;
  try {
    response = await fetch(`${access.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${access.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    console.error(`relay: the relay does not answer at ${access.url} (${cause}): is relay serve running?`);
    return undefined;
  }
  const answer: any = await response.json().catch(() => undefined);
  if (!response.ok) {
    const detail = answer?.detail ?? answer?.title ?? response.statusText;
    const fields = (answer?.errors ?? []).map((e: any) => `; ${e.field}: ${e.message}`).join("");
    console.error(`relay: ${method} ${path}: ${response.status} ${detail}${fields}`);
    return undefined;
  }
  return answer;
}
