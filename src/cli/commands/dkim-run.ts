import { formatRecord } from "../../auth/domain-records.ts";
import { parseAlgorithm, parseDomain } from "../../auth/domains.ts";
import { selectorProblem } from "../../auth/dkim-keys.ts";
import { checkAll, UsageError } from "../../core/errors.ts";
import type { CommandContext } from "../command.ts";
import { withDomains } from "./domains-run.ts";

/** `relay dkim keygen ...` (dkim.ts has its usage). */
export async function runDkim(context: CommandContext): Promise<number> {
  const [action, ...rest] = context.positionals;
  if (action !== "keygen") {
    const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
    throw new UsageError([`dkim: ${what}: expected keygen; see "relay dkim --help"`]);
  }
  if (rest.length > 0) throw new UsageError([`dkim keygen: unexpected argument ${JSON.stringify(rest[0])}`]);
  const { options } = context;
  const problems: string[] = [];
  if (typeof options.domain !== "string") problems.push("dkim keygen: --domain DOMAIN is required");
  const selector = typeof options.selector === "string" ? options.selector : undefined;
  const selectorIssue = selector === undefined ? undefined : selectorProblem(selector);
  if (selectorIssue) problems.push(selectorIssue);
  checkAll([
    () => parseAlgorithm(options.algorithm, false),
    () => typeof options.domain === "string" && parseDomain(options.domain),
  ], problems);
  return withDomains(context, async (domains) => {
    const { key, record } = await domains.keygen(options.domain as string, {
      selector,
      algorithm: options.algorithm,
    });
    if (options.json) {
      context.print(JSON.stringify({ key, record }));
    } else {
      context.print(
        `relay: created DKIM key ${key.selector} (${key.algorithm}) for ${key.domain}: ${
          key.state === "active" ? "signs now" : "pending until its record is visible in DNS"
        }`,
      );
      for (const line of formatRecord(record)) context.print(line);
    }
    return 0;
  });
}
