import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
} from "node:fs";
import { join } from "node:path";
import type { Client } from "@libsql/client";

/** Where the copies made before a migration are. */
export interface UpgradeBackup {
  readonly database: string;
  /** Absent when there was no spool (a database that never took mail through serve). */
  readonly spool?: string;
}

/**
 * Keep the data directory as it was before migrating it from `schema` (the
 * last migration applied), so that the binary that wrote it can run it
 * again: the database copied to `<db>.backup-<schema>` (VACUUM INTO: a
 * consistent snapshot, its WAL included, then synced), and the spool's
 * segments hard-linked into `<spool>.backup-<schema>/`. Linking costs no
 * space: a segment is never written again once a process that appended to
 * it has ended (src/queue/spool.ts), and this runs before serve opens the
 * spool; the link keeps a segment's bodies when the newer relay removes
 * it. A file system that cannot link (the spool on its own mount) gets
 * copies. Each is made under a `.partial` name and renamed once complete,
 * so a copy that failed half-way is never taken for a backup; one left by
 * an earlier attempt from the same schema is replaced.
 */
export async function backUpBeforeMigrating(
  client: Pick<Client, "execute">,
  databaseFile: string,
  spoolDir: string | undefined,
  schema: string,
): Promise<UpgradeBackup> {
  const database = `${databaseFile}.backup-${schema}`;
  const spool = spoolDir !== undefined && existsSync(spoolDir) ? `${spoolDir}.backup-${schema}` : undefined;
  await complete(database, async (partial) => {
    await client.execute({ sql: "VACUUM INTO ?", args: [partial] });
    syncFile(partial);
  });
  if (spool !== undefined) {
    await complete(spool, (partial) => {
      mkdirSync(partial, { mode: 0o700 });
      for (const entry of readdirSync(spoolDir!, { withFileTypes: true })) {
        if (entry.isFile()) linkOrCopy(join(spoolDir!, entry.name), join(partial, entry.name));
      }
      return Promise.resolve();
    });
  }
  return { database, ...(spool === undefined ? {} : { spool }) };
}

/** Make `path` through `make(partial)`, then put it in place of any earlier one. */
async function complete(path: string, make: (partial: string) => Promise<void>): Promise<void> {
  const partial = `${path}.partial`;
  rmSync(partial, { recursive: true, force: true });
  try {
    await make(partial);
    rmSync(path, { recursive: true, force: true });
    renameSync(partial, path);
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw error;
  }
}

function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV" && (error as NodeJS.ErrnoException).code !== "EPERM") {
      throw error;
    }
    copyFileSync(from, to);
    syncFile(to);
  }
}

function syncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
