import { shapingInForce } from "../../app/shaping-file.ts";
import { runChecks } from "../../check/checks.ts";
import { formatResult, formatSummary } from "../../check/result.ts";
import { systemClock } from "../../core/clock.ts";
import { createDnsClient } from "../../dns/client.ts";
import { createResolver } from "../../dns/resolver.ts";
import { migrationFiles } from "../../queue/migration-files.ts";
import type { Command } from "../command.ts";

export const checkCommand: Command = {
  name: "check",
  summary: "validate the configuration and the host without starting: PASS/WARN/FAIL per line",
  usage: `Usage: relay check [--json] [--env-file FILE]

Checks what serve needs, without starting it and without writing anything:
the configuration (an invalid one is listed, exit status 2, as serve would),
then one line per check, PASS, WARN or FAIL, with the fix:

  RELAY_DATA_DIR       exists or can be created, owned by this user, no one
                       else can write in it; free space on its disk
  RELAY_SOURCE_IP      an address of this host
  RELAY_HOSTNAME       resolves (A/AAAA) to RELAY_SOURCE_IP, and the PTR of
                       RELAY_SOURCE_IP names it (asked of RELAY_DNS_SERVERS;
                       a WARN when DNS cannot be reached)
  RELAY_TLS_CERT_FILE  readable, matches RELAY_TLS_KEY_FILE, not expired nor
                       expiring within 14 days, names RELAY_HOSTNAME
  *_LISTEN             each address can be bound (or this relay holds it)
  database             opens; migrations pending (serve applies them), or
                       recorded ones this binary does not know (a newer
                       relay made the schema: FAIL)

Run it as the user the relay runs as. Exit status 0 when nothing FAILs, 1
when something does. --json prints the results as a JSON array.`,
  options: { json: { type: "boolean" } },
  async run({ config, options, print }) {
    const loaded = config();
    shapingInForce(loaded); // an invalid RELAY_SHAPING_FILE stops serve: a usage error here too
    const results = await runChecks(loaded, {
      resolver: createResolver(createDnsClient({ servers: loaded.dnsServers })),
      now: systemClock.now(),
      migrations: migrationFiles(),
    });
    if (options.json === true) {
      print(JSON.stringify(results, null, 2));
    } else {
      print("PASS configuration: every RELAY_* variable is valid");
      for (const result of results) print(formatResult(result));
      print(formatSummary(results));
    }
    return results.some((r) => r.status === "fail") ? 1 : 0;
  },
};
