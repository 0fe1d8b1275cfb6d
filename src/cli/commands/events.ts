import { parseDuration } from "../../core/duration.ts";
import { UsageError } from "../../core/errors.ts";
import { EVENT_CSV_COLUMNS, eventCsvLine } from "../../queue/event-csv.ts";
import { eventJson } from "../../events/event-json.ts";
import { type EventFilter, readEvents, readMessageFacts } from "../../queue/event-log.ts";
import { type EventType, eventTypes } from "../../queue/schema.ts";
import { csvLine } from "../../queue/suppression-csv.ts";
import type { Database } from "../../queue/database.ts";
import type { Command, CommandContext } from "../command.ts";

const USAGE = `Usage:
  relay events export [--format csv|jsonl] [--since T] [--until T] [--type a,b]

The durable event log as an accounting file on standard output, oldest
first, read from the database a page at a time (memory stays flat however
long the log). It may run while the relay serves.

  --format  csv (the default): a header line, then one record per event:
              ${EVENT_CSV_COLUMNS.join(",")}
            (docs/logs.md says what each column holds);
            jsonl: one JSON object per line, as GET /v1/events gives it.
  --since   only events at or after T: an ISO 8601 time
            (2026-12-01T00:00:00Z, 2026-12-01) or a duration back from now
            (30m, 24h, 7d).
  --until   only events before T (the same forms).
  --type    only these event types, a comma list (${eventTypes.join(", ")}).

Options: --env-file FILE loads RELAY_* defaults from a file.`;

/** Events per page: one page in memory, one query (and one for its messages) per page. */
const PAGE = 1000;

/** An ISO 8601 time, or a duration back from `now`; undefined when it is neither. */
export function parseSince(text: string, now: number): number | undefined {
  const trimmed = text.trim();
  if (/^\d{4}-\d\d-\d\d/.test(trimmed)) {
    const at = Date.parse(trimmed);
    return Number.isNaN(at) ? undefined : at;
  }
  const back = parseDuration(trimmed);
  return back === undefined ? undefined : now - back;
}

interface ExportOptions {
  readonly format: "csv" | "jsonl";
  readonly filter: EventFilter;
}

/** The command line checked: every problem listed, one a line (exit 2). */
export function exportOptions(
  positionals: readonly string[],
  options: Readonly<Record<string, unknown>>,
  now: number,
): ExportOptions {
  const problems: string[] = [];
  const [action, ...rest] = positionals;
  if (action !== "export") {
    const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
    problems.push(`events: ${what}: expected export; see "relay events --help"`);
  }
  if (rest.length > 0) problems.push(`events export: unexpected argument ${JSON.stringify(rest[0])}`);
  const format = options.format ?? "csv";
  if (format !== "csv" && format !== "jsonl") {
    problems.push(`events export: --format: expected csv or jsonl, got ${JSON.stringify(format)}`);
  }
  const time = (name: "since" | "until") => {
    const value = options[name];
    if (typeof value !== "string") return undefined;
    const at = parseSince(value, now);
    if (at === undefined) {
      problems.push(
        `events export: --${name}: expected an ISO 8601 time or a duration such as 24h, got ${JSON.stringify(value)}`,
      );
    }
    return at;
  };
  const since = time("since");
  const until = time("until");
  if (since !== undefined && until !== undefined && until <= since) {
    problems.push("events export: --until must be later than --since");
  }
  let types: EventType[] | undefined;
  if (typeof options.type === "string") {
    const named = options.type.split(",").map((t) => t.trim()).filter((t) => t !== "");
    const unknown = named.filter((t) => !(eventTypes as readonly string[]).includes(t));
    if (named.length === 0 || unknown.length > 0) {
      problems.push(
        `events export: --type: expected event types among ${eventTypes.join(", ")}, got ${
          JSON.stringify(options.type)
        }`,
      );
    }
    types = named as EventType[];
  }
  if (problems.length > 0) throw new UsageError(problems);
  return {
    format: format as ExportOptions["format"],
    filter: {
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(types ? { types } : {}),
    },
  };
}

async function exportEvents(context: CommandContext, database: Database, options: ExportOptions): Promise<number> {
  if (options.format === "csv") context.print(csvLine(EVENT_CSV_COLUMNS));
  for (let after = 0;;) {
    const page = await readEvents(database, after, PAGE, options.filter);
    if (page.length === 0) break;
    after = page[page.length - 1]!.id;
    if (options.format === "jsonl") {
      context.print(page.map((e) => JSON.stringify(eventJson(e))).join("\n"));
    } else {
      const facts = await readMessageFacts(database, page.flatMap((e) => (e.messageId ? [e.messageId] : [])));
      context.print(page.map((e) => eventCsvLine(e, e.messageId ? facts.get(e.messageId) : undefined)).join("\n"));
    }
    if (page.length < PAGE) break;
  }
  return 0;
}

export const eventsCommand: Command = {
  name: "events",
  takesArguments: true,
  summary: "export [--format csv|jsonl] [--since T]: accounting files from the event log",
  usage: USAGE,
  options: {
    format: { type: "string" },
    since: { type: "string" },
    until: { type: "string" },
    type: { type: "string" },
  },
  run(context) {
    const options = exportOptions(context.positionals, context.options, Date.now());
    return context.withServices(({ database }) => exportEvents(context, database, options));
  },
};
