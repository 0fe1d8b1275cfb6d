import type { Command } from "./command.ts";
import { adminTokenCommand } from "./commands/admin-token.ts";
import { checkCommand } from "./commands/check.ts";
import { dkimCommand } from "./commands/dkim.ts";
import { drainCommand } from "./commands/drain.ts";
import { domainsCommand } from "./commands/domains.ts";
import { eventsCommand } from "./commands/events.ts";
import { keysCommand } from "./commands/keys.ts";
import { migrateCommand } from "./commands/migrate.ts";
import { nodesCommand } from "./commands/nodes.ts";
import { queueCommand } from "./commands/queue.ts";
import { serveCommand } from "./commands/serve.ts";
import { suppressionsCommand } from "./commands/suppressions.ts";
import { usersCommand } from "./commands/users.ts";
import { versionCommand } from "./commands/version.ts";

export const COMMANDS: readonly Command[] = [
  serveCommand,
  migrateCommand,
  checkCommand,
  versionCommand,
  usersCommand,
  keysCommand,
  domainsCommand,
  dkimCommand,
  queueCommand,
  drainCommand,
  nodesCommand,
  suppressionsCommand,
  adminTokenCommand,
  eventsCommand,
];

export function mainUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `relay: a single-binary edge relay (SMTP + HTTP in, durable queue, delivery from your own IP)

Usage: relay [command] [options] [--env-file FILE]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}
  ${"help".padEnd(width)}  this text, or "relay help COMMAND" for a command's own

Configuration comes from RELAY_* environment variables (see README.md);
--env-file FILE loads KEY=VALUE defaults from a file.
Run "relay help COMMAND" or "relay COMMAND --help" for a command's own help.`;
}
