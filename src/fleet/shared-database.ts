import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Client, createClient } from "@libsql/client";
import { drizzle } from "drizzle-orm/libsql";
import { systemClock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { Database, Db } from "../queue/database.ts";
import { applyMigrations, schemaState } from "../queue/migrate.ts";
import { type MigrationFile, migrationFiles } from "../queue/migration-files.ts";
import * as schema from "../queue/schema.ts";
import { WorkerClient } from "../queue/worker-client.ts";
import { sharedTokenRefused } from "./unreachable.ts";

/** The fleet's shared state, as a node reaches it. */
export interface SharedDatabase extends Database {
  /** Opened from the replica alone, for reading, because the server was away when the node started. */
  readonly offline: boolean;
  /** Offline: try the server again, and serve from a live replica from now on if it answers. */
  reconnect(): Promise<void>;
  /** Pull what the server has now, before a read that must see every write made so far (a live replica). */
  sync(): Promise<void>;
}

export interface SharedDatabaseOptions {
  /** RELAY_SHARED_DB_URL and RELAY_SHARED_DB_TOKEN. */
  readonly url: string;
  readonly authToken?: string;
  readonly version: string;
  readonly log: Logger;
  readonly files?: readonly MigrationFile[];
}

/** How often a live replica pulls the server's new frames: what one node writes, the others read within about this. */
const SYNC_PERIOD_S = 1;

/** The embedded replica's file in the data directory. */
function replicaPathOf(dataDir: string): string {
  return join(dataDir, "shared.db");
}

/** The shared server refused the node or could not be reached; `serve` exits 1 with this message. */
export class SharedDatabaseError extends Error {}

/**
 * Open the fleet's shared state for `relay serve`: the server's schema is
 * brought up to date, then an embedded replica in the data directory serves
 * the reads on a worker thread (libSQL's engine blocks while it syncs) and
 * sends the writes to the server. A server that cannot be reached is not
 * fatal when the replica holds a copy: the node starts from it (partitioned)
 * and the replica catches up when the server answers.
 */
export async function openSharedReplica(
  options: SharedDatabaseOptions & { readonly dataDir: string },
): Promise<{ database: SharedDatabase; applied: string[] }> {
  const path = replicaPathOf(options.dataDir);
  let applied: string[] = [];
  let reachable = true;
  try {
    applied = await migrateServer(options);
  } catch (error) {
    if (!(error instanceof ServerUnreachable)) throw error;
    if (!existsSync(path)) {
      throw new SharedDatabaseError(
        `${error.message}, and this node has no replica of it yet: start it once the server answers`,
      );
    }
    options.log("warn", "the shared database cannot be reached: starting from this node's replica of it", {
      url: options.url,
      error: error.message,
    });
    reachable = false;
  }
  const replica = { syncUrl: options.url, authToken: options.authToken, syncPeriodS: SYNC_PERIOD_S };
  const openLive = async () => {
    const worker = await WorkerClient.open(path, [], false, replica);
    // The schema just migrated, and what the fleet holds, before anything reads.
    await worker.sync().catch(async (error) => {
      await worker.close();
      throw error;
    });
    return worker;
  };
  if (reachable) {
    const worker = await openLive().catch((error) => {
      throw new SharedDatabaseError(`cannot open the replica ${path} of ${options.url}: ${messageOf(error)}`);
    });
    return { database: new ReplicaDatabase(worker, false, openLive, options.log), applied };
  }
  // libSQL opens a replica only by syncing it; until the server answers, the file is read as it is
  // (mode=ro: libSQL takes no readonly option, and a write here would fork the replica from the server).
  const worker = await WorkerClient.open(`${pathToFileURL(resolve(path)).href}?mode=ro`, [], true);
  return { database: new ReplicaDatabase(worker, true, openLive, options.log), applied };
}

/**
 * The replica a node serves the shared state from. Offline (the server was
 * away at start) it is the replica file opened for reading only: reads work,
 * writes fail as they would against a server that does not answer, and
 * `reconnect` swaps in a live replica once the server answers. Stores reach
 * the connection through `client` and `db` on every call, so the swap is
 * theirs at once; requests sent before it are answered by the old worker.
 */
class ReplicaDatabase implements SharedDatabase {
  #worker: WorkerClient;
  #db: Db;
  #offline: boolean;

  constructor(
    worker: WorkerClient,
    offline: boolean,
    private readonly openLive: () => Promise<WorkerClient>,
    private readonly log: Logger,
  ) {
    this.#worker = worker;
    this.#db = drizzle(worker as unknown as Client, { schema });
    this.#offline = offline;
  }

  get client(): Client {
    return this.#worker as unknown as Client;
  }

  get db(): Db {
    return this.#db;
  }

  get offline(): boolean {
    return this.#offline;
  }

  async reconnect(): Promise<void> {
    if (!this.#offline) return;
    const live = await this.openLive();
    const old = this.#worker;
    this.#worker = live;
    this.#db = drizzle(live as unknown as Client, { schema });
    this.#offline = false;
    this.log("info", "the shared database answers: the replica is live again");
    await old.close();
  }

  async sync(): Promise<void> {
    if (!this.#offline) await this.#worker.sync();
  }

  close(): Promise<void> {
    return this.#worker.close();
  }
}

/**
 * Open the fleet's shared state for a CLI command: straight to the server
 * (a replica file belongs to the running `serve`), its schema brought up to date.
 */
export async function openSharedRemote(
  options: SharedDatabaseOptions,
): Promise<{ database: SharedDatabase; applied: string[] }> {
  const applied = await migrateServer(options);
  const client = createClient({ url: options.url, authToken: options.authToken });
  return {
    database: {
      client,
      db: drizzle(client, { schema }),
      offline: false,
      reconnect: async () => {},
      sync: async () => {},
      close: async () => client.close(),
    },
    applied,
  };
}

class ServerUnreachable extends SharedDatabaseError {}

/**
 * Apply the binary's pending migrations on the server, through a client of
 * its own (one transaction, as for a node's database). Migrations the binary
 * does not know are another node's, newer: they only add to the schema, so
 * an older node keeps working with the tables it knows while the fleet is
 * upgraded one node at a time.
 */
async function migrateServer({ url, authToken, version, log, files = migrationFiles() }: SharedDatabaseOptions) {
  const client = createClient({ url, authToken });
  try {
    const state = await schemaState(client, files).catch((error) => {
      throw refusal(url, error);
    });
    if (state.unknown.length > 0) {
      log("warn", "the shared database has migrations a newer relay applied; this node uses the tables it knows", {
        unknown: state.unknown,
        version,
      });
    }
    const applied = await applyMigrations(client, files, systemClock.now(), version).catch(async (error) => {
      // Nodes started together race to migrate the server: one transaction wins, the others find nothing to do.
      if ((await schemaState(client, files)).pending.length === 0) return [];
      throw error;
    });
    if (applied.length > 0) log("info", "shared database migrated", { applied, version });
    return applied;
  } finally {
    client.close();
  }
}

/** Why the server refused the first request, in words an operator can act on. */
function refusal(url: string, error: unknown): SharedDatabaseError {
  const why = messageOf(error);
  if (sharedTokenRefused(error)) {
    return new SharedDatabaseError(
      `the shared database at ${url} refused RELAY_SHARED_DB_TOKEN (${why}): set the token the server accepts`,
    );
  }
  return new ServerUnreachable(`cannot reach the shared database at ${url} (${why})`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
