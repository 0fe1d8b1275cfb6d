// deno-lint-ignore-file no-explicit-any -- the API's JSON answers, printed as they come
import type { CommandContext } from "../command.ts";
import { callRelay } from "../running-relay.ts";
import { printTable } from "./users.ts";

/** Rows `relay queue summary` shows without --all: one terminal screen with its header and totals. */
export const SUMMARY_ROWS = 20;
/** Replies are cut to this many characters in tables, so a row stays on one line. */
const REPLY_WIDTH = 50;

const UNITS = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const;

/** How long ago a time was, in its largest whole unit ("3h", "12m"): compact for a table. */
function age(iso: string, now = Date.now()): string {
  const ms = Math.max(0, now - Date.parse(iso));
  for (const [unit, size] of UNITS) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return "0s";
}

const cut = (text: string, width = REPLY_WIDTH) => (text.length > width ? `${text.slice(0, width - 1)}…` : text);

/** `relay queue summary`: the destinations with the most mail first, then a totals line (like `pmta show queues`). */
export async function printSummary(context: CommandContext, all: boolean): Promise<number> {
  const answer = await callRelay(context, "GET", "/v1/queue");
  if (answer === undefined) return 1;
  if (context.options.json) {
    context.print(JSON.stringify(answer));
    return 0;
  }
  const lines: { backlog: number; row: string[] }[] = [];
  for (const d of answer.destinations) {
    const state = d.state === "suspended"
      ? `suspended until ${d.suspended_until ?? d.automation?.until}`
      : d.state === "backing_off"
      ? `backing off until ${d.backoff_until}`
      : d.state === "throttled"
      ? `throttled until ${d.automation?.until} (${d.automation?.rule})`
      : "normal";
    lines.push({
      backlog: d.queued + d.deferred + d.held,
      row: [
        d.name,
        state,
        String(d.queued),
        String(d.deferred),
        String(d.held),
        String(d.in_flight),
        d.oldest === null ? "-" : age(d.oldest),
        cut(d.last_reply?.text ?? d.last_error ?? "-"),
      ],
    });
  }
  for (const d of answer.domains) {
    lines.push({
      backlog: d.queued + d.deferred + d.held,
      row: [d.domain, "not routed yet", String(d.queued), String(d.deferred), String(d.held), "0", age(d.oldest), "-"],
    });
  }
  if (lines.length === 0) {
    context.print("relay: the queue is empty and no destination is known");
    return 0;
  }
  // Stable: destinations come busiest first already; unrouted domains find their place among them.
  lines.sort((a, b) => b.backlog - a.backlog);
  const shown = all ? lines : lines.slice(0, SUMMARY_ROWS);
  printTable(context, [
    ["DESTINATION", "STATE", "QUEUED", "DEFERRED", "HELD", "IN FLIGHT", "OLDEST", "LAST REPLY"],
    ...shown.map((l) => l.row),
  ]);
  const sum = (i: number) => lines.reduce((n, l) => n + Number(l.row[i]), 0);
  const more = lines.length - shown.length;
  context.print(
    `total: ${sum(2)} queued, ${sum(3)} deferred, ${sum(4)} held, ${sum(5)} in flight at ${lines.length} ` +
      `destination(s) and domain(s)${more > 0 ? `; ${more} more not shown (--all)` : ""}` +
      (answer.truncated ? "; more domains have pending mail than listed" : ""),
  );
  return 0;
}

/** The query string of `relay queue list`'s filters. */
function listQuery(context: CommandContext): URLSearchParams {
  const query = new URLSearchParams();
  for (
    const [option, parameter] of [
      ["state", "state"],
      ["domain", "domain"],
      ["recipient", "recipient"],
      ["sender", "sender"],
      ["tag", "tag"],
      ["older-than", "older_than"],
    ] as const
  ) {
    const value = context.options[option];
    if (typeof value === "string") query.set(parameter, value);
  }
  return query;
}

/** `relay queue list`: page through GET /v1/queue/messages until `limit` recipients are shown or none are left. */
export async function printList(context: CommandContext, limit: number): Promise<number> {
  const query = listQuery(context);
  const rows: any[] = [];
  let cursor: string | null = null;
  do {
    query.set("limit", String(Math.min(1000, limit - rows.length)));
    if (cursor !== null) query.set("cursor", cursor);
    const page = await callRelay(context, "GET", `/v1/queue/messages?${query}`);
    if (page === undefined) return 1;
    rows.push(...page.recipients);
    cursor = page.next_cursor;
  } while (cursor !== null && rows.length < limit);
  if (context.options.json) {
    for (const row of rows) context.print(JSON.stringify(row));
    return 0;
  }
  if (rows.length === 0) {
    context.print("relay: no recipient in the queue matches");
    return 0;
  }
  printTable(context, [
    ["MESSAGE", "RECIPIENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "SENDER", "LAST REPLY"],
    ...rows.map((r) => [
      r.message_id,
      r.email,
      r.in_flight ? `${r.state} (in flight)` : r.state,
      String(r.attempts),
      r.next_attempt_at,
      r.mail_from === "" ? "<>" : r.mail_from,
      cut(r.last_reply ?? "-"),
    ]),
  ]);
  if (cursor !== null) context.print(`relay: more match than the ${limit} shown (--limit N)`);
  return 0;
}

/** `relay queue show ID`: the envelope, each recipient's state, and every attempt with its reply. */
export async function printMessage(context: CommandContext, id: string): Promise<number> {
  const m = await callRelay(context, "GET", `/v1/messages/${encodeURIComponent(id)}`);
  if (m === undefined) return 1;
  if (context.options.json) {
    context.print(JSON.stringify(m));
    return 0;
  }
  context.print(`message ${m.id}`);
  context.print(`  received  ${m.created_at} over ${m.source}, ${m.size} bytes`);
  context.print(`  from      ${m.mail_from === "" ? "<>" : m.mail_from}`);
  if (m.tags.length > 0) context.print(`  tags      ${m.tags.join(", ")}`);
  context.print("");
  printTable(context, [
    ["RECIPIENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "LAST REPLY"],
    ...m.recipients.map((
      r: any,
    ) => [r.email, r.state, String(r.attempts), r.next_attempt_at ?? "-", r.last_reply ?? "-"]),
  ]);
  const attempts = m.recipients.flatMap((r: any) =>
    r.attempt_log.map((a: any) => [a.at, r.email, a.outcome, String(a.attempt ?? "-"), a.mx ?? "-", a.reply ?? "-"])
  );
  if (attempts.length > 0) {
    context.print("");
    printTable(context, [["AT", "RECIPIENT", "OUTCOME", "ATTEMPT", "MX", "REPLY"], ...attempts]);
  }
  return 0;
}
