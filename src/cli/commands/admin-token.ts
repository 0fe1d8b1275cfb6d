import { UsageError } from "../../core/errors.ts";
import type { Command } from "../command.ts";

export const adminTokenCommand: Command = {
  name: "admin-token",
  takesArguments: true,
  summary: "reset: replace the generated admin token and print the new one once",
  usage: `Usage: relay admin-token reset [--env-file FILE]

Without RELAY_ADMIN_TOKEN, the relay makes an admin token at its first start,
prints it once and keeps only its hash: the same token works across
restarts. "reset" replaces it (a lost or leaked token) and prints the new
one once; a running relay takes it up within seconds, and the old one stops
working. With RELAY_ADMIN_TOKEN set, that token is the admin token: change
the variable instead.`,
  async run(context) {
    const [action, ...rest] = context.positionals;
    if (action !== "reset") {
      const what = action === undefined ? "missing action" : `unknown action ${JSON.stringify(action)}`;
      throw new UsageError([`admin-token: ${what}: expected reset; see "relay admin-token --help"`]);
    }
    if (rest.length > 0) throw new UsageError([`admin-token reset: unexpected argument ${JSON.stringify(rest[0])}`]);
    if (context.config().adminToken !== undefined) {
      throw new UsageError([
        "admin-token reset: RELAY_ADMIN_TOKEN is set, and that token is the admin token; change the variable instead",
      ]);
    }
    const { resetAdminToken } = await import("../../app/admin-token.ts");
    const token = await context.withServices((services) => resetAdminToken(services.settings));
    context.print(token);
    return 0;
  },
};
