import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type Client, createClient, type InStatement, type TransactionMode } from "@libsql/client";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import * as schema from "./schema.ts";
import type { SpoolWrite } from "./spool-file.ts";
import { WorkerClient } from "./worker-client.ts";

export type Db = LibSQLDatabase<typeof schema>;

export interface Database {
  readonly client: Client;
  readonly db: Db;
  /**
   * Write bodies into the spool, then (only if that succeeded) run the batch:
   * the embedded database only. A libSQL server may be shared by nodes
   * (leases name the node), any of which may deliver a message: there the
   * bodies stay in the database, where every node can read them.
   */
  readonly batchAfterWrite?: (write: SpoolWrite, stmts: InStatement[], mode: TransactionMode) => Promise<void>;
  /**
   * A write transaction ahead of the reads and writes still waiting for the
   * embedded database: a delivery's outcome. Elsewhere, writeBatch.
   */
  readonly urgentBatch?: (stmts: InStatement[]) => Promise<void>;
  /** Resolves once everything sent before it is written and the database is closed. */
  close(): Promise<void>;
}

/**
 * WAL, and synchronous=FULL so that a committed transaction survives power
 * loss, which is what our "250 means on disk" promise rests on. SQLite's
 * default 4 KiB pages: with the bodies in the spool a commit carries rows,
 * and smaller pages write less of them (13% less worker CPU per message than
 * 16 KiB pages at 5 KB, measured). A file made with other pages keeps them.
 */
const FILE_PRAGMAS = [
  "PRAGMA journal_mode = WAL",
  "PRAGMA synchronous = FULL",
  "PRAGMA busy_timeout = 5000",
  "PRAGMA foreign_keys = ON",
];

/** The path of a `file:` database URL; undefined for a libSQL server. */
export function databaseFilePath(url: string): string | undefined {
  return url.startsWith("file:") ? url.slice("file:".length).split("?")[0]! : undefined;
}

/**
 * Open the node's queue database. A local file is served by a worker thread
 * (the embedded engine blocks while it commits); a libSQL server is reached
 * over the network from this thread.
 */
export async function openDatabase(url: string, authToken?: string): Promise<Database> {
  const path = databaseFilePath(url);
  if (path !== undefined) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const worker = await WorkerClient.open(path, FILE_PRAGMAS);
    // The worker client is the part of Client that drizzle and the store use.
    const client = worker as unknown as Client;
    return {
      client,
      db: drizzle(client, { schema }),
      batchAfterWrite: (write, stmts, mode) => worker.batchAfterWrite(write, stmts, mode),
      urgentBatch: (stmts) => worker.urgentBatch(stmts),
      close: () => worker.close(),
    };
  }
  const client = createClient({ url, authToken });
  await client.execute("PRAGMA foreign_keys = ON");
  return {
    client,
    db: drizzle(client, { schema }),
    close: async () => client.close(),
  };
}
