import { API_SCOPES, type ApiKeyService, parseScopes } from "../../auth/api-keys.ts";
import { normalizeDomains } from "../../auth/users.ts";
import { checkAll, UsageError } from "../../core/errors.ts";
import { DEFAULT_LANE, type Lane, laneOption } from "../../core/lane.ts";
import { scanLabel, scanOption, type ScanSetting } from "../../core/scan-setting.ts";
import type { ApiKeyRecord } from "../../queue/credentials.ts";
import type { Command, CommandContext } from "../command.ts";
import { printTable } from "./users.ts";

const USAGE = `Usage:
  relay keys create [--name NAME] [--scope SCOPE]... [--domains a.example,b.example]
                    [--priority transactional|bulk] [--scan on|off] [--json]
  relay keys list [--json]
  relay keys revoke ID

HTTP API keys, presented as "Authorization: Bearer <token>".

  create   make a key and print its id and token. The token is shown only
           this once: it is stored as a SHA-256 hash and cannot be recovered.
           --scope: ${API_SCOPES.join(", ")}; repeat
           it or give a comma list; default send.
           --domains: the sender domains the key may use, matched exactly;
           without it, any domain.
           --priority: the lane of the key's mail when a request names none
           (no priority field, no RELAY_PRIORITY_HEADER header):
           transactional (the default) or bulk; transactional mail is sent
           before bulk mail.
           --scan: on scans the key's mail with RELAY_MILTERS whatever
           RELAY_MILTER_SCOPE says, off never scans it; without it, the
           scope decides.
           --json prints {id, name, scopes, domains, priority, scan,
           created_at, token}; scan is true, false, or null for the scope.
  list     one key a line: id, name, scopes, domains ("*" = any), priority,
           scan (on, off, or scope), created, revoked ("-" = live); --json
           prints a JSON array. Never the token.
  revoke   stop a key from working; exit status 1 when no live key has ID.

Options: --env-file FILE loads RELAY_* defaults from a file.`;

const ALLOWED: Record<string, readonly string[]> = {
  create: ["name", "scope", "domains", "priority", "scan", "json"],
  list: ["json"],
  revoke: [],
};

export const keysCommand: Command = {
  name: "keys",
  takesArguments: true,
  summary: "HTTP API keys: create [--name N] [--scope S] [--domains a,b] [--priority P] [--scan S], list, revoke ID",
  usage: USAGE,
  options: {
    name: { type: "string" },
    scope: { type: "string", multiple: true },
    domains: { type: "string" },
    priority: { type: "string" },
    scan: { type: "string" },
    json: { type: "boolean" },
  },
  async run(context) {
    const [action, ...rest] = context.positionals;
    if (action === undefined || !(action in ALLOWED)) {
      const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
      throw new UsageError([`keys: ${what}: expected create, list or revoke; see "relay keys --help"`]);
    }
    const allowed = ALLOWED[action]!;
    const extra = ["name", "scope", "domains", "priority", "scan", "json"].filter((o) =>
      context.options[o] !== undefined && !allowed.includes(o)
    );
    if (extra.length > 0) throw new UsageError(extra.map((o) => `keys ${action}: --${o} does not apply`));
    if (action === "revoke") {
      if (rest.length !== 1) throw new UsageError(["expected: relay keys revoke ID"]);
      const id = rest[0]!;
      return withKeys(context, async (keys) => {
        if (!(await keys.revoke(id))) {
          console.error(`relay: no live API key with id ${JSON.stringify(id)}`);
          return 1;
        }
        context.print(`relay: revoked API key ${id}`);
        return 0;
      });
    }
    if (rest.length > 0) throw new UsageError([`keys ${action}: unexpected argument ${JSON.stringify(rest[0])}`]);
    if (action === "create") return create(context);
    return withKeys(context, async (keys) => {
      const all = await keys.list();
      if (context.options.json) {
        context.print(JSON.stringify(all.map(describe)));
      } else if (all.length === 0) {
        context.print("relay: no API keys");
      } else {
        printTable(
          context,
          all.map((k) => [
            k.id,
            k.name === "" ? "-" : k.name,
            k.scopes.join(","),
            k.domains.length === 0 ? "*" : k.domains.join(","),
            k.lane,
            scanLabel(k.scan),
            iso(k.createdAt),
            k.revokedAt === null ? "-" : `revoked ${iso(k.revokedAt)}`,
          ]),
        );
      }
      return 0;
    });
  },
};

async function create(context: CommandContext): Promise<number> {
  const { options } = context;
  const scopes = Array.isArray(options.scope)
    ? options.scope
    : typeof options.scope === "string"
    ? [options.scope]
    : undefined;
  const domains = typeof options.domains === "string" ? options.domains.split(",").filter((d) => d.trim() !== "") : [];
  const name = typeof options.name === "string" ? options.name : undefined;
  let lane: Lane = DEFAULT_LANE;
  let scan: ScanSetting = null;
  // Usage problems before the database is opened (create() checks the same again).
  checkAll([() => parseScopes(scopes), () => normalizeDomains(domains), () => {
    if (typeof options.priority === "string") lane = laneOption(options.priority);
  }, () => {
    if (typeof options.scan === "string") scan = scanOption(options.scan);
  }]);
  return withKeys(context, async (keys) => {
    const { record, token } = await keys.create({ name, scopes, domains, lane, scan });
    if (options.json) {
      context.print(JSON.stringify({ ...describe(record), token }));
    } else {
      context.print(`id: ${record.id}`);
      context.print(`token: ${token}`);
      context.print(
        `relay: created API key ${record.id} (scopes ${record.scopes.join(",")}; sender domains ${
          record.domains.length === 0 ? "any" : record.domains.join(",")
        }; priority ${record.lane}; scan ${scanLabel(record.scan)}); the token is shown only this once`,
      );
    }
    return 0;
  });
}

function describe(k: ApiKeyRecord) {
  return {
    id: k.id,
    name: k.name,
    scopes: k.scopes,
    domains: k.domains,
    priority: k.lane,
    scan: k.scan,
    created_at: iso(k.createdAt),
    revoked_at: k.revokedAt === null ? null : iso(k.revokedAt),
  };
}

function withKeys(context: CommandContext, body: (keys: ApiKeyService) => Promise<number>): Promise<number> {
  return context.withServices(({ apiKeys }) => body(apiKeys));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
