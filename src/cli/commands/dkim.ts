import { formatRecord } from "../../auth/domain-records.ts";
import { parseAlgorithm, parseDomain } from "../../auth/domains.ts";
import { selectorProblem } from "../../auth/dkim-keys.ts";
import { checkAll, UsageError } from "../../core/errors.ts";
import type { Command } from "../command.ts";
import { withDomains } from "./domains.ts";

const USAGE = `Usage:
  relay dkim keygen --domain DOMAIN [--selector S] [--algorithm rsa|ed25519] [--json]

Create a DKIM signing key for DOMAIN (added as a sending domain if new),
store it in the node's database and print the DNS TXT record to publish at
S._domainkey.DOMAIN. --algorithm: rsa (RSA-2048, default) or ed25519
(RFC 8463). --selector: default rsaYYYYMMDD / edYYYYMMDD.

The key signs at once when DOMAIN has no active key of that algorithm;
otherwise it waits, like a rotation, until its record is visible in DNS
("relay domains check DOMAIN", or the relay's periodic check).
The private key is never printed. --json prints {key, record}.

Options: --env-file FILE loads RELAY_* defaults from a file.`;

export const dkimCommand: Command = {
  name: "dkim",
  takesArguments: true,
  summary: "DKIM keys: keygen --domain D [--selector S] [--algorithm rsa|ed25519]",
  usage: USAGE,
  options: {
    domain: { type: "string" },
    selector: { type: "string" },
    algorithm: { type: "string" },
    json: { type: "boolean" },
  },
  async run(context) {
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
  },
};
