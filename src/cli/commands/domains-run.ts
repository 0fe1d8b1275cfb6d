import { type DomainCheckReport, formatReport } from "../../auth/domain-check.ts";
import { formatRecord, type RecordToPublish } from "../../auth/domain-records.ts";
import { DomainError, type DomainService, type DomainView, parseAlgorithm, parseDomain } from "../../auth/domains.ts";
import { selectorProblem } from "../../auth/dkim-keys.ts";
import { UsageError } from "../../core/errors.ts";
import type { DkimKeyInfo } from "../../queue/domains.ts";
import type { CommandContext } from "../command.ts";
import { printTable } from "./users.ts";

const ALLOWED: Record<string, readonly string[]> = {
  add: ["selector", "algorithm", "json"],
  list: ["json"],
  show: ["json"],
  check: ["json"],
  rotate: ["json"],
};

/** `relay domains ACTION ...` (domains.ts has its usage). */
export async function runDomains(context: CommandContext): Promise<number> {
  const [action, ...rest] = context.positionals;
  if (action === undefined || !(action in ALLOWED)) {
    const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
    throw new UsageError([`domains: ${what}: expected add, list, show, check or rotate; see "relay domains --help"`]);
  }
  const allowed = ALLOWED[action]!;
  const extra = ["selector", "algorithm", "json"].filter((o) =>
    context.options[o] !== undefined && !allowed.includes(o)
  );
  if (extra.length > 0) throw new UsageError(extra.map((o) => `domains ${action}: --${o} does not apply`));
  const json = context.options.json === true;
  if (action === "list") {
    if (rest.length > 0) throw new UsageError([`domains list: unexpected argument ${JSON.stringify(rest[0])}`]);
    return withDomains(context, async (domains) => {
      const all = await domains.list();
      if (json) context.print(JSON.stringify(all.map(viewJson)));
      else if (all.length === 0) context.print("relay: no sending domains");
      else {printTable(
          context,
          all.map((
            d,
          ) => [
            d.domain,
            keysText(d.keys),
            d.verifiedAt === null ? "not verified" : "verified",
            lastCheckText(d.lastCheck),
          ]),
        );}
      return 0;
    });
  }
  if (rest.length !== 1) throw new UsageError([`expected: relay domains ${action} DOMAIN`]);
  const domain = parseDomain(rest[0]!);
  if (action === "add") {
    const selector = typeof context.options.selector === "string" ? context.options.selector : undefined;
    const algorithm = parseAlgorithm(context.options.algorithm, true);
    const problem = selector === undefined ? undefined : selectorProblem(selector);
    if (problem) throw new UsageError([problem]);
    return withDomains(context, async (domains) => {
      const view = await domains.add(domain, { selector, algorithm });
      if (json) context.print(JSON.stringify(viewJson(view)));
      else {
        context.print(`relay: added sending domain ${view.domain} (DKIM ${keysText(view.keys)})`);
        printRecords(context, view.domain, view.records);
        context.print(
          `Then run "relay domains check ${view.domain}" to see whether DNS matches. SMTP AUTH users and API keys may send ` +
            `from ${view.domain} once a check has seen its DKIM record (RELAY_SENDER_POLICY=verified, the default).`,
        );
      }
      return 0;
    });
  }
  return withDomains(context, async (domains) => {
    if (action === "show") {
      const view = await domains.get(domain);
      if (!view) throw new DomainError(404, `no sending domain ${domain}`);
      if (json) context.print(JSON.stringify(viewJson(view)));
      else {
        context.print(
          `${view.domain}: DKIM ${keysText(view.keys)}; ${verifiedText(view.verifiedAt)}; last check: ${
            lastCheckText(view.lastCheck)
          }`,
        );
        printRecords(context, view.domain, view.records);
      }
      return 0;
    }
    if (action === "rotate") {
      const { keys, check } = await domains.rotate(domain);
      const view = await domains.get(domain);
      if (json) context.print(JSON.stringify({ new_keys: keys, check, domain: view ? viewJson(view) : null }));
      else {
        context.print(`relay: new DKIM key(s) for ${domain}: ${keysText(keys)}`);
        printRecords(context, domain, (view?.records ?? []).filter((r) => r.purpose === "dkim"));
      }
      return 0;
    }
    const report = await domains.check(domain);
    if (json) context.print(JSON.stringify(report));
    else for (const line of formatReport(report)) context.print(line);
    return report.ok ? 0 : 1;
  });
}

function printRecords(context: CommandContext, domain: string, records: readonly RecordToPublish[]): void {
  context.print("");
  context.print(`DNS records to publish for ${domain}:`);
  for (const record of records) {
    context.print("");
    for (const line of formatRecord(record)) context.print(line);
  }
  context.print("");
}

function keysText(keys: readonly DkimKeyInfo[]): string {
  const shown = keys.filter((k) => k.state !== "retired");
  return shown.length === 0 ? "no keys" : shown.map((k) => `${k.selector}/${k.algorithm}/${k.state}`).join(", ");
}

function verifiedText(at: number | null): string {
  return at === null
    ? "not verified (no check has seen its DKIM record yet)"
    : `verified ${new Date(at).toISOString()}`;
}

function lastCheckText(check: DomainCheckReport | null): string {
  return check === null ? "never checked" : `${check.ok ? "ok" : "failing"} at ${check.checkedAt}`;
}

export function viewJson(view: DomainView) {
  return {
    domain: view.domain,
    created_at: new Date(view.createdAt).toISOString(),
    keys: view.keys,
    records: view.records,
    last_check: view.lastCheck,
    verified_at: view.verifiedAt === null ? null : new Date(view.verifiedAt).toISOString(),
  };
}

/** The domain service over the node's database and its resolver (RELAY_DNS_SERVERS). 404/409 print and exit 1. */
export async function withDomains(
  context: CommandContext,
  body: (domains: DomainService) => Promise<number>,
): Promise<number> {
  try {
    return await context.withServices(({ domains }) => body(domains));
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    console.error(`relay: ${error.message}`);
    return 1;
  }
}
