import type { SchemaState } from "../queue/migrate.ts";
import type { MigrationFile } from "../queue/migration-files.ts";
import { readSchemaState } from "../queue/open.ts";
import { type CheckResult, errorReason, fail, pass, warn } from "./result.ts";

/** Tags named in a line; the rest are counted. */
const NAMED_TAGS = 5;

/**
 * The database opens, and its schema is the one this binary knows: no
 * migration recorded that this binary lacks (a newer relay made it), and
 * any pending ones said (serve applies them at start).
 */
export async function checkSchema(dbUrl: string, files: readonly MigrationFile[]): Promise<CheckResult> {
  const what = `database ${dbUrl}`;
  let status: SchemaState | undefined;
  try {
    status = await readSchemaState(dbUrl, files);
  } catch (error) {
    return fail(what, `cannot read it (${errorReason(error)})`, "check RELAY_DB_URL and the file's owner and mode");
  }
  if (status === undefined) {
    return pass(what, `does not exist yet; serve creates it with all ${files.length} migrations`);
  }
  if (status.unknown.length > 0) {
    return fail(
      what,
      `its schema is newer than this relay: it records migrations this binary does not know: ${named(status.unknown)}`,
      `run the relay version that made them${
        status.lastVersion === undefined ? "" : ` (${status.lastVersion})`
      }, or restore the backup taken before the upgrade`,
    );
  }
  if (status.pending.length > 0) {
    return warn(
      what,
      `${status.pending.length} migrations pending (${named(status.pending)}); serve applies them at start`,
      "run relay migrate (or just start the relay)",
    );
  }
  return pass(what, `schema up to date (${status.applied.length} migrations)`);
}

function named(tags: readonly string[]): string {
  const more = tags.length > NAMED_TAGS ? ` and ${tags.length - NAMED_TAGS} more` : "";
  return tags.slice(0, NAMED_TAGS).join(", ") + more;
}
