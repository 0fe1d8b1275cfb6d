import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import * as v from "valibot";
import { UsageError } from "../../core/errors.ts";
import { CSV_COLUMNS, csvLine, importSuppressionCsv, suppressionCsvLine } from "../../queue/suppression-csv.ts";
import { suppressionInputSchema, suppressionOf } from "../../queue/suppression-input.ts";
import {
  formatScope,
  normalizeSuppressedAddress,
  parseScope,
  type SuppressionStore,
} from "../../queue/suppressions.ts";
import type { Command, CommandContext } from "../command.ts";

const USAGE = `Usage:
  relay suppressions list [--address ADDR]
  relay suppressions add ADDR [--reason R] [--scope S] [--expires TIME]
  relay suppressions remove ADDR [--scope S]
  relay suppressions import FILE
  relay suppressions export

The suppression list: mail to an address on it is accepted but never sent
(the recipient is stored as suppressed, with a "suppressed" event naming
the entry). Addresses are compared in lower case, local part included.

  list     one entry a line: address, scope, reason, source, created,
           expires ("-" = never).
  add      suppress ADDR. --reason: hard-bounce, complaint, unsubscribe,
           manual (the default) or import. --scope: global (the default),
           principal:ID (mail from one API key id, SMTP user or "admin"),
           domain:DOMAIN (mail from one sending domain). --expires: an ISO
           8601 time after which the entry suppresses nothing.
  remove   unsuppress ADDR (every scope, or --scope's); exit status 1 when
           it was not on the list.
  import   add the entries of a CSV file (export's columns; a header line
           names them, only address is required; reason default import).
           Read and written a batch at a time, so millions of lines are
           fine. Bad lines are reported on standard error with their
           number and skipped; exit status 1 when there was one.
  export   the whole list as CSV on standard output, with a header line:
           ${CSV_COLUMNS.join(",")}

Options: --env-file FILE loads RELAY_* defaults from a file.`;

const ALLOWED: Record<string, readonly string[]> = {
  list: ["address"],
  add: ["reason", "scope", "expires"],
  remove: ["scope"],
  import: [],
  export: [],
};
const OPTIONS = ["address", "reason", "scope", "expires"];

/** Lines per print of a listing or an export: few writes, one page in memory. */
const PAGE = 1000;

export const suppressionsCommand: Command = {
  name: "suppressions",
  takesArguments: true,
  summary: "the suppression list: list, add ADDR [--reason R], remove ADDR, import FILE, export (CSV)",
  usage: USAGE,
  options: {
    address: { type: "string" },
    reason: { type: "string" },
    scope: { type: "string" },
    expires: { type: "string" },
  },
  async run(context) {
    const [action, ...rest] = context.positionals;
    if (action === undefined || !(action in ALLOWED)) {
      const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
      throw new UsageError([
        `suppressions: ${what}: expected list, add, remove, import or export; see "relay suppressions --help"`,
      ]);
    }
    const extra = OPTIONS.filter((o) => context.options[o] !== undefined && !ALLOWED[action]!.includes(o));
    if (extra.length > 0) throw new UsageError(extra.map((o) => `suppressions ${action}: --${o} does not apply`));
    const option = (name: string) => {
      const value = context.options[name];
      return typeof value === "string" ? value : undefined;
    };
    switch (action) {
      case "list":
        none(rest, "suppressions list");
        return withList(context, (list) => printList(context, list, option("address")));
      case "export":
        none(rest, "suppressions export");
        return withList(context, (list) => exportCsv(context, list));
      case "add": {
        const checked = v.safeParse(suppressionInputSchema, {
          address: single(rest, "suppressions add ADDR"),
          scope: option("scope"),
          reason: option("reason"),
          expires_at: option("expires"),
        }, { abortEarly: false });
        if (!checked.success) {
          throw new UsageError(checked.issues.map((i) => `suppressions add: ${optionOf(i)}: ${i.message}`));
        }
        const entry = suppressionOf(checked.output, "manual");
        return withList(context, async (list) => {
          await list.add(entry);
          context.print(
            `relay: suppressed ${normalizeSuppressedAddress(entry.address)} (${
              formatScope(entry.scope)
            }, ${entry.reason})`,
          );
          return 0;
        });
      }
      case "remove": {
        const address = single(rest, "suppressions remove ADDR");
        const scopeText = option("scope");
        const scope = scopeText === undefined ? undefined : parseScope(scopeText);
        if (scopeText !== undefined && scope === undefined) {
          throw new UsageError([`suppressions remove: --scope: expected global, principal:ID or domain:DOMAIN`]);
        }
        return withList(context, async (list) => {
          const removed = await list.remove(address, scope);
          if (removed === 0) {
            console.error(`relay: ${address} is not on the suppression list`);
            return 1;
          }
          context.print(`relay: removed ${removed} entr${removed === 1 ? "y" : "ies"} for ${address}`);
          return 0;
        });
      }
      default:
        return importFile(context, single(rest, "suppressions import FILE"));
    }
  },
};

/** The option a field came from, as the user typed it. */
function optionOf(issue: v.BaseIssue<unknown>): string {
  const field = v.getDotPath(issue);
  return field === "address" ? "ADDR" : field === "expires_at" ? "--expires" : `--${field}`;
}

async function printList(context: CommandContext, list: SuppressionStore, address?: string): Promise<number> {
  let lines: string[] = [];
  let any = false;
  const flush = () => {
    if (lines.length > 0) context.print(lines.join("\n"));
    lines = [];
  };
  const entries = address === undefined ? list.all(PAGE) : (await list.list({ limit: PAGE, address })).entries;
  for await (const e of entries) {
    any = true;
    const source = e.source ? `${e.source.event}${e.source.messageId ? `:${e.source.messageId}` : ""}` : "-";
    const expires = e.expiresAt === undefined ? "-" : new Date(e.expiresAt).toISOString();
    lines.push(
      [e.address, formatScope(e.scope), e.reason, source, new Date(e.createdAt).toISOString(), expires].join("  "),
    );
    if (lines.length >= PAGE) flush();
  }
  flush();
  if (!any) context.print("relay: the suppression list is empty");
  return 0;
}

async function exportCsv(context: CommandContext, list: SuppressionStore): Promise<number> {
  let lines = [csvLine(CSV_COLUMNS)];
  for await (const e of list.all(PAGE)) {
    lines.push(suppressionCsvLine(e));
    if (lines.length >= PAGE) {
      context.print(lines.join("\n"));
      lines = [];
    }
  }
  if (lines.length > 0) context.print(lines.join("\n"));
  return 0;
}

async function importFile(context: CommandContext, file: string): Promise<number> {
  // Opened before the database, so that a missing file is reported as such.
  const input = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    input.once("open", () => resolve());
    input.once("error", reject);
  }).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError([`suppressions import: cannot read ${JSON.stringify(file)}: ${error.code ?? error.message}`]);
  });
  return withList(context, async (list) => {
    const result = await importSuppressionCsv(
      createInterface({ input, crlfDelay: Infinity }),
      (entries) => list.addMany(entries),
      (line, problems) => console.error(`relay: ${file}:${line}: ${problems.join("; ")}`),
    );
    context.print(`relay: imported ${result.imported} entries; refused ${result.refused} lines`);
    return result.refused > 0 ? 1 : 0;
  });
}

function withList(context: CommandContext, body: (list: SuppressionStore) => Promise<number>): Promise<number> {
  return context.withServices(({ suppressions }) => body(suppressions));
}

function none(rest: readonly string[], form: string): void {
  if (rest.length > 0) throw new UsageError([`${form}: unexpected argument ${JSON.stringify(rest[0])}`]);
}

function single(rest: readonly string[], form: string): string {
  if (rest.length !== 1) throw new UsageError([`expected: relay ${form}`]);
  return rest[0]!;
}
