// deno-lint-ignore-file no-explicit-any -- the API's JSON answers, printed as they come
import { parseDuration } from "../../core/duration.ts";
import { UsageError } from "../../core/errors.ts";
import type { Command } from "../command.ts";
import { callRelay } from "../running-relay.ts";
import { printList, printMessage, printSummary, SUMMARY_ROWS } from "./queue-views.ts";

const USAGE = `Usage:
  relay queue summary [--all] [--json]
  relay queue list [--state queued|deferred|held] [--domain D] [--recipient R] [--sender S]
                   [--tag T] [--older-than DURATION] [--limit N] [--json]
  relay queue show ID [--json]
  relay queue retry|hold|release|bounce TARGET
  relay queue delete ID | ID:RECIPIENT
  relay queue suspend DESTINATION --for DURATION
  relay queue resume DESTINATION

Inspect and steer the running relay's queue. TARGET is a message (its id),
one recipient of it (ID:RECIPIENT, e.g. 01J...:bob@example.com) or a
destination. DESTINATION is a name from "relay queue summary", or a
recipient domain: the destination its mail goes to now (every domain at the
same MX hosts shares it).

  summary  the ${SUMMARY_ROWS} destinations with the most mail (--all: every one):
           state (normal, suspended until, backing off until), recipients
           queued, deferred, held and in flight, the oldest, the last reply;
           then a totals line. --json prints GET /v1/queue's answer.
  list     recipients in the queue by domain, state, oldest first, with
           their filters (--older-than: received longer ago than 30m, 2h,
           1d); the first --limit (default 100). --json: one JSON line each.
  show     a message: envelope, each recipient's state, every attempt and
           its reply.
  retry    deferred recipients are due now.
  hold     pending recipients are held: never delivered until released (a
           restart keeps them held).
  release  held recipients go back to the queue, due when they were due.
  bounce   recipients in the queue bounce now (a DSN per NOTIFY).
  delete   cancel a message's recipients still in the queue, or one: no
           delivery, no DSN.
  suspend  attempt nothing at the destination for DURATION (30m, 2h, 1d);
           what it holds and what comes meanwhile waits, no attempt counted.
           A relay restart keeps it.
  resume   end the suspension (and any pause after failures): what it held
           and every deferred recipient of its domains is due now.

These commands talk to the relay serving from this RELAY_DATA_DIR, through
its HTTP API, with the URL and token it writes to control.json there at
start (the running node holds the suspensions and connections).

Options: --env-file FILE loads RELAY_* defaults from a file.`;

const STEERING = ["retry", "hold", "release", "bounce", "delete"];
const DESTINATION_ONLY = ["suspend", "resume"];
const ACTIONS = ["summary", "list", "show", ...STEERING, ...DESTINATION_ONLY];

/** What each action's options are; any other option given is bad usage. */
const OPTIONS_OF: Record<string, readonly string[]> = {
  summary: ["all", "json"],
  list: ["state", "domain", "recipient", "sender", "tag", "older-than", "limit", "json"],
  show: ["json"],
  suspend: ["for"],
};

/** A ULID message id, alone or before `:recipient`. */
const MESSAGE_TARGET = /^([0-9A-HJKMNP-TV-Z]{26})(?::(.+))?$/i;

export const queueCommand: Command = {
  name: "queue",
  takesArguments: true,
  summary: "the running relay's queue: summary, list, show ID, retry|hold|release|bounce|delete, suspend, resume",
  usage: USAGE,
  options: {
    for: { type: "string" },
    json: { type: "boolean" },
    all: { type: "boolean" },
    state: { type: "string" },
    domain: { type: "string" },
    recipient: { type: "string" },
    sender: { type: "string" },
    tag: { type: "string" },
    "older-than": { type: "string" },
    limit: { type: "string" },
  },
  async run(context) {
    const [action, ...rest] = context.positionals;
    if (action === undefined || !ACTIONS.includes(action)) {
      const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
      throw new UsageError([`queue: ${what}: expected ${ACTIONS.join(", ")}; see "relay queue --help"`]);
    }
    const allowed = OPTIONS_OF[action] ?? [];
    const misplaced = Object.entries(context.options)
      .filter(([name, value]) => value !== undefined && name !== "env-file" && !allowed.includes(name))
      .map(([name]) => `queue ${action}: --${name} does not apply`);
    if (misplaced.length > 0) throw new UsageError(misplaced);
    if (action === "summary" || action === "list") {
      if (rest.length > 0) throw new UsageError([`queue ${action}: unexpected argument ${JSON.stringify(rest[0])}`]);
      if (action === "summary") return printSummary(context, context.options.all === true);
      return printList(context, listLimit(context.options.limit));
    }
    if (rest.length !== 1) {
      const what = action === "show" ? "ID" : DESTINATION_ONLY.includes(action) ? "DESTINATION" : "TARGET";
      throw new UsageError([`expected: relay queue ${action} ${what}`]);
    }
    const target = rest[0]!;
    if (action === "show") return printMessage(context, target);
    const message = MESSAGE_TARGET.exec(target);
    if (message && !DESTINATION_ONLY.includes(action)) return steerMessage(context, action, message[1]!, message[2]);
    if (action === "delete") {
      throw new UsageError([
        `queue delete: expected a message id or ID:RECIPIENT, not ${
          JSON.stringify(target)
        } (a destination's mail: bounce)`,
      ]);
    }
    return steerDestination(context, action, target);
  },
};

function listLimit(text: unknown): number {
  if (text === undefined) return 100;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError(["queue list: --limit: expected a positive integer"]);
  return limit;
}

const DONE: Record<string, [field: string, verb: string]> = {
  retry: ["due_now", "made due now"],
  hold: ["held", "held"],
  release: ["released", "released"],
  bounce: ["bounced", "bounced"],
  delete: ["cancelled", "cancelled"],
};

/** An action on a message, or on one recipient of it. */
async function steerMessage(
  context: Parameters<Command["run"]>[0],
  action: string,
  id: string,
  recipient: string | undefined,
): Promise<number> {
  const base = `/v1/messages/${encodeURIComponent(id)}` +
    (recipient === undefined ? "" : `/recipients/${encodeURIComponent(recipient)}`);
  const answer = action === "delete"
    ? await callRelay(context, "DELETE", base)
    : await callRelay(context, "POST", `${base}/${action}`);
  if (answer === undefined) return 1;
  const [field, verb] = DONE[action]!;
  const what = recipient === undefined ? `of ${id}` : `(${answer.recipient} of ${id})`;
  context.print(`relay: ${verb} ${answer[field]} recipient(s) ${what}`);
  return 0;
}

/** An action on a destination (a name, or a recipient domain). */
async function steerDestination(
  context: Parameters<Command["run"]>[0],
  action: string,
  destination: string,
): Promise<number> {
  let body: unknown;
  if (action === "suspend") {
    const duration = context.options.for;
    if (typeof duration !== "string" || !((parseDuration(duration) ?? 0) > 0)) {
      throw new UsageError(["queue suspend: --for: expected a duration such as 30m, 2h or 1d"]);
    }
    body = { duration };
  }
  const answer = await callRelay(context, "POST", `/v1/queue/${encodeURIComponent(destination)}/${action}`, body);
  if (answer === undefined) return 1;
  context.print(describeSteering(action, answer));
  return 0;
}

function describeSteering(action: string, answer: any): string {
  switch (action) {
    case "suspend":
      return `relay: suspended ${answer.name} until ${answer.suspended_until}`;
    case "resume":
      return `relay: resumed ${answer.name}; ${answer.due_now} recipient(s) due now`;
    case "retry":
      return `relay: ${answer.due_now} recipient(s) of ${answer.name} due now`;
    case "hold":
      return `relay: held ${answer.held} recipient(s) of ${answer.name}`;
    case "release":
      return `relay: released ${answer.released} recipient(s) of ${answer.name}`;
    default:
      return `relay: bounced ${answer.bounced} recipient(s) of ${answer.name}`;
  }
}
