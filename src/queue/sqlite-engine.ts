import { Buffer } from "node:buffer";
import Database from "libsql";
import type { ReplicaOptions, Statement, WireResult } from "./db-protocol.ts";

type Prepared = Database.Statement<unknown[]>;

/** Distinct SQL texts kept prepared; the relay's statements are far fewer than this. */
const CACHE_LIMIT = 512;

const BEGIN: Record<string, string> = {
  write: "BEGIN IMMEDIATE",
  read: "BEGIN TRANSACTION READONLY",
  deferred: "BEGIN DEFERRED",
};

/**
 * The embedded engine, driven directly rather than through @libsql/client:
 * the client prepares every statement again on every call and builds rows
 * as property-defined objects, which cost the worker more than the SQL
 * itself. Here a statement is prepared once per SQL text and rows stay
 * arrays, the form the main thread receives anyway. Values are bound and
 * read the way @libsql/client does in its default "number" integer mode.
 */
export class SqliteEngine {
  readonly #db: Database.Database;
  readonly #prepared = new Map<string, Prepared>();
  readonly #readOnly: boolean;
  readonly #replica: boolean;

  constructor(path: string, readOnly = false, replica?: ReplicaOptions) {
    this.#db = new Database(
      path,
      replica
        ? { syncUrl: replica.syncUrl, authToken: replica.authToken, syncPeriod: replica.syncPeriodS } as never
        : { readonly: readOnly },
    );
    this.#readOnly = readOnly;
    this.#replica = replica !== undefined;
  }

  /** A replica: pull the server's new frames now (what another node wrote). */
  sync(): void {
    (this.#db as unknown as { sync(): unknown }).sync();
  }

  execute(stmt: Statement): WireResult {
    return this.#run(stmt);
  }

  /** All statements in one transaction; any failure rolls the whole batch back. */
  batch(stmts: readonly Statement[], mode = "deferred"): WireResult[] {
    const begin = BEGIN[mode];
    if (begin === undefined) throw new RangeError(`unknown transaction mode "${mode}"`);
    this.#run({ sql: begin });
    try {
      const results = stmts.map((stmt) => this.#run(stmt));
      this.#run({ sql: "COMMIT" });
      return results;
    } catch (error) {
      if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  /**
   * Move what the write-ahead log holds into the database file and empty
   * the log, then close. libSQL keeps the connection open while statements
   * it prepared are alive, so SQLite's own checkpoint at close does not
   * happen; without this one a stopped relay leaves committed rows only in
   * relay.db-wal. With it the file alone is the database, and an older
   * relay can read its schema without opening the log (src/queue/open.ts).
   * No waiting: a reader still in the log (a CLI command while serve runs)
   * leaves it to the last one to close. A read-only connection writes nothing,
   * and a replica's log is libSQL's to manage (its frames are the server's).
   */
  close(): void {
    if (!this.#readOnly && !this.#replica) {
      this.#db.exec("PRAGMA busy_timeout = 0");
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    this.#prepared.clear();
    this.#db.close();
  }

  #run(stmt: Statement): WireResult {
    const prepared = this.#prepare(stmt.sql);
    const args = bindable(stmt.args);
    if (prepared.reader) {
      const columns = prepared.columns() as { name: string; type: string | null }[];
      return {
        columns: columns.map((c) => c.name),
        columnTypes: columns.map((c) => c.type ?? ""),
        rows: (prepared.all(args) as unknown[][]).map((row) => row.map(fromSql)),
        rowsAffected: 0,
        lastInsertRowid: undefined,
      };
    }
    const info = prepared.run(args) as { changes: number; lastInsertRowid: number | bigint };
    return {
      columns: [],
      columnTypes: [],
      rows: [],
      rowsAffected: info.changes,
      lastInsertRowid: BigInt(info.lastInsertRowid),
    };
  }

  /**
   * A replica's statements are prepared afresh each time: libSQL (0.5.29)
   * answers a replica's prepared statement run again with other arguments
   * with the rows of its first run (test/e2e/fleet.test.ts fails without this).
   */
  #prepare(sql: string): Prepared {
    let prepared = this.#prepared.get(sql);
    if (prepared === undefined) {
      prepared = this.#db.prepare(sql);
      if (prepared.reader) prepared.raw(true);
      if (this.#replica) return prepared;
      if (this.#prepared.size >= CACHE_LIMIT) this.#prepared.delete(this.#prepared.keys().next().value!);
      this.#prepared.set(sql, prepared);
    }
    return prepared;
  }
}

function bindable(args: unknown): unknown[] | Record<string, unknown> {
  if (args === undefined) return [];
  if (Array.isArray(args)) return args.map(toSql);
  const named: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args as Record<string, unknown>)) {
    named[/^[@$:]/.test(name) ? name.slice(1) : name] = toSql(value);
  }
  return named;
}

function toSql(value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) throw new RangeError("only finite numbers can be stored");
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (value instanceof Date) return value.valueOf();
  if (value === undefined) throw new TypeError("undefined cannot be passed as an argument to the database");
  return value;
}

/** A blob arrives as a Buffer over its own ArrayBuffer: hand on the ArrayBuffer, as @libsql/client does. */
function fromSql(value: unknown): unknown {
  return value instanceof Buffer ? value.buffer : value;
}
