import type { Command } from "../command.ts";

export const migrateCommand: Command = {
  name: "migrate",
  summary: "apply pending database migrations and exit",
  usage: `Usage: relay migrate [--env-file FILE]

Applies pending migrations to RELAY_DB_URL, all in one transaction, and
exits. A database file is backed up first (relay.db.backup-<schema> and
spool.backup-<schema>/ in RELAY_DATA_DIR). A database a newer relay
migrated is refused with exit 1 and left unchanged (docs/upgrading.md).`,
  async run({ config, withServices, print }) {
    const { dbUrl } = config();
    const applied = await withServices(async (services) => services.applied);
    print(applied.length === 0 ? `relay: ${dbUrl} is up to date` : `relay: applied ${applied.join(", ")} to ${dbUrl}`);
    return 0;
  },
};
