import { createClient } from "@libsql/client";
import { sharedTokenRefused } from "../fleet/unreachable.ts";
import type { MigrationFile } from "../queue/migration-files.ts";
import { schemaState } from "../queue/migrate.ts";
import { type CheckResult, fail, pass, warn } from "./result.ts";

/**
 * In a fleet: the shared server answers, takes RELAY_SHARED_DB_TOKEN, and
 * its schema is known to this binary. Read only: serve migrates it at start.
 */
export async function checkSharedDb(
  url: string,
  authToken: string | undefined,
  files: readonly MigrationFile[],
): Promise<CheckResult> {
  const what = `RELAY_SHARED_DB_URL ${url}`;
  const client = createClient({ url, authToken });
  try {
    const state = await schemaState(client, files);
    if (state.unknown.length > 0) {
      return warn(
        what,
        `a newer relay migrated it (${state.unknown.join(", ")}); this node uses the tables it knows`,
        "upgrade this node to the fleet's newest version",
      );
    }
    const pending = state.pending.length > 0 ? `, ${state.pending.length} migrations pending (serve applies them)` : "";
    return pass(what, `answers, the token is accepted${pending}`);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (sharedTokenRefused(error)) {
      return fail(what, `the server refused RELAY_SHARED_DB_TOKEN (${why})`, "set the token the server accepts");
    }
    return fail(
      what,
      `cannot reach it (${why})`,
      "check the URL and that the server runs; a node that has synced before starts from its replica, a new one cannot",
    );
  } finally {
    client.close();
  }
}
