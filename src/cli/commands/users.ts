import { checkAll, UsageError } from "../../core/errors.ts";
import { DEFAULT_LANE, type Lane, laneOption } from "../../core/lane.ts";
import { scanLabel, scanOption, type ScanSetting } from "../../core/scan-setting.ts";
import { normalizeDomains, passwordProblem, userNameProblem, type UserService } from "../../auth/users.ts";
import type { Command, CommandContext } from "../command.ts";

const USAGE = `Usage:
  relay users add NAME [--domains a.example,b.example] [--priority transactional|bulk]
                       [--scan on|off]                  (password on standard input)
  relay users list [--json]
  relay users remove NAME

SMTP AUTH users (AUTH PLAIN/LOGIN, offered only over TLS) and the sender
domains each may use.

  add      create a user. The password (at least 8 characters) is read from
           standard input; one trailing newline is removed:
             printf '%s' "$PASSWORD" | relay users add alice --domains example.com
           NAME: 1-64 characters of A-Z a-z 0-9 . _ @ + -  (case-sensitive).
           --domains: the sender domains the user may use in MAIL FROM,
           matched exactly (example.com does not cover sub.example.com);
           without it, any domain.
           --priority: the lane of the user's mail when the message does
           not name one in RELAY_PRIORITY_HEADER: transactional (the
           default) or bulk; transactional mail is sent before bulk mail.
           --scan: on scans the user's mail with RELAY_MILTERS whatever
           RELAY_MILTER_SCOPE says, off never scans it; without it, the
           scope decides.
  list     one user a line: name, domains ("*" = any), priority, scan (on,
           off, or scope), created (UTC); --json prints a JSON array instead
           (scan: true, false, or null for the scope). Password hashes are
           never shown.
  remove   delete a user; exit status 1 when there is no such user.

Options: --env-file FILE loads RELAY_* defaults from a file.`;

const ALLOWED: Record<string, readonly string[]> = {
  add: ["domains", "priority", "scan"],
  list: ["json"],
  remove: [],
};
const OPTIONS = ["domains", "priority", "scan", "json"];

export const usersCommand: Command = {
  name: "users",
  takesArguments: true,
  summary: "SMTP AUTH users: add NAME [--domains a,b] [--priority P] [--scan S] (password on stdin), list, remove NAME",
  usage: USAGE,
  options: {
    domains: { type: "string" },
    priority: { type: "string" },
    scan: { type: "string" },
    json: { type: "boolean" },
  },
  async run(context) {
    const [action, ...rest] = context.positionals;
    if (action === undefined || !(action in ALLOWED)) {
      const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
      throw new UsageError([`users: ${what}: expected add, list or remove; see "relay users --help"`]);
    }
    checkOptions(context, action);
    if (action === "add") return add(context, rest);
    if (action === "list") {
      if (rest.length > 0) throw new UsageError([`users list: unexpected argument ${JSON.stringify(rest[0])}`]);
      return withUsers(context, async (users) => {
        const all = await users.list();
        if (context.options.json) {
          context.print(
            JSON.stringify(
              all.map((u) => ({
                name: u.name,
                domains: u.domains,
                priority: u.lane,
                scan: u.scan,
                created_at: iso(u.createdAt),
              })),
            ),
          );
        } else if (all.length === 0) {
          context.print("relay: no users");
        } else {
          printTable(
            context,
            all.map((u) => [
              u.name,
              u.domains.length === 0 ? "*" : u.domains.join(","),
              u.lane,
              scanLabel(u.scan),
              iso(u.createdAt),
            ]),
          );
        }
        return 0;
      });
    }
    const name = single(rest, "users remove NAME");
    return withUsers(context, async (users) => {
      if (!(await users.remove(name))) {
        console.error(`relay: no user ${JSON.stringify(name)}`);
        return 1;
      }
      context.print(`relay: removed user ${name}`);
      return 0;
    });
  },
};

async function add(context: CommandContext, rest: readonly string[]): Promise<number> {
  const name = single(rest, "users add NAME");
  // Everything that needs no password is checked before waiting on standard input.
  const nameProblem = userNameProblem(name);
  const { domains: domainsOption, priority, scan: scanText } = context.options;
  let domains: string[] = [];
  let lane: Lane = DEFAULT_LANE;
  let scan: ScanSetting = null;
  checkAll([
    () => {
      if (typeof domainsOption === "string") {
        domains = normalizeDomains(domainsOption.split(",").filter((d) => d.trim() !== ""));
      }
    },
    () => {
      if (typeof priority === "string") lane = laneOption(priority);
    },
    () => {
      if (typeof scanText === "string") scan = scanOption(scanText);
    },
  ], nameProblem ? [nameProblem] : []);
  return withUsers(context, async (users) => {
    if (await users.get(name)) throw new UsageError([`user ${JSON.stringify(name)} already exists`]);
    const password = (await context.readStdin()).replace(/\r?\n$/, "");
    if (password === "") {
      throw new UsageError(["users add: give the password on standard input (at least 8 characters)"]);
    }
    const problem = passwordProblem(password);
    if (problem) throw new UsageError([problem]);
    const user = await users.add({ name, password, domains, lane, scan });
    context.print(
      `relay: added user ${user.name} (sender domains: ${
        user.domains.length === 0 ? "any" : user.domains.join(", ")
      }; priority: ${user.lane}; scan: ${scanLabel(user.scan)})`,
    );
    return 0;
  });
}

function withUsers(context: CommandContext, body: (users: UserService) => Promise<number>): Promise<number> {
  return context.withServices(({ users }) => body(users));
}

function checkOptions(context: CommandContext, action: string): void {
  const allowed = ALLOWED[action] ?? [];
  const extra = OPTIONS.filter((o) => context.options[o] !== undefined && !allowed.includes(o));
  if (extra.length > 0) throw new UsageError(extra.map((o) => `users ${action}: --${o} does not apply`));
}

function single(rest: readonly string[], form: string): string {
  if (rest.length !== 1) throw new UsageError([`expected: relay ${form}`]);
  return rest[0]!;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Rows as columns separated by two spaces, the last column unpadded. */
export function printTable(context: Pick<CommandContext, "print">, rows: readonly (readonly string[])[]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) {
    context.print(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "));
  }
}
