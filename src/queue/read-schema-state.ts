import { existsSync } from "node:fs";
import { type Client, createClient } from "@libsql/client";
import { type SchemaState, schemaState } from "./migrate.ts";
import type { MigrationFile } from "./migration-files.ts";
import { WorkerClient } from "./worker-client.ts";

/**
 * The schema state of the database at `dbUrl` (src/queue/migrate.ts),
 * read without writing anything: undefined when its file does not exist
 * yet. An embedded file is opened read-only; with no -wal beside it (no
 * relay has it open, and the last one closed it cleanly) it is opened
 * immutable, so that SQLite creates no -wal and -shm files for this look.
 */
export async function readSchemaState(
  dbUrl: string,
  files: readonly MigrationFile[],
): Promise<SchemaState | undefined> {
  let client: Pick<Client, "execute" | "close">;
  if (dbUrl.startsWith("file:")) {
    const path = dbUrl.slice("file:".length).split("?")[0]!;
    if (!existsSync(path)) return undefined;
    const uri = existsSync(`${path}-wal`)
      ? path
      : `file:${path.split("/").map(encodeURIComponent).join("/")}?immutable=1`;
    client = await WorkerClient.open(uri, [], true);
  } else {
    client = createClient({ url: dbUrl });
  }
  try {
    return await schemaState(client, files);
  } finally {
    await client.close();
  }
}
