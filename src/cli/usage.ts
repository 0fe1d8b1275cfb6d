export const MAIN_USAGE = `relay: a single-binary edge relay (SMTP + HTTP in, durable queue, delivery from your own IP)

Usage: relay [command] [--env-file FILE]

Commands:
  serve      run the node: SMTP listeners, HTTP API, delivery loop (the default)
  migrate    apply pending database migrations and exit
  version    print the version

Configuration comes from RELAY_* environment variables (see README.md);
--env-file FILE loads KEY=VALUE defaults from a file.
Run "relay COMMAND --help" for a command's own help.`;

export const COMMAND_USAGE: Record<string, string> = {
  serve: `Usage: relay serve [--env-file FILE]

Runs the node until SIGTERM or SIGINT: SMTP on RELAY_SMTP_LISTEN, the HTTP API
on RELAY_HTTP_LISTEN, and the delivery loop. Migrations are applied at start.`,
  migrate: `Usage: relay migrate [--env-file FILE]

Applies pending migrations to RELAY_DB_URL and exits.`,
  version: `Usage: relay version

Prints the version.`,
};
