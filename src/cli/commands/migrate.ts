import type { Command } from "../command.ts";

export const migrateCommand: Command = {
  name: "migrate",
  summary: "apply pending database migrations and exit",
  usage: "Usage: relay migrate [--env-file FILE]\n\nApplies pending migrations to RELAY_DB_URL and exits.",
  async run({ config, withServices, print }) {
    const { dbUrl } = config();
    const applied = await withServices(async (services) => services.applied);
    print(applied.length === 0 ? `relay: ${dbUrl} is up to date` : `relay: applied ${applied.join(", ")} to ${dbUrl}`);
    return 0;
  },
};
