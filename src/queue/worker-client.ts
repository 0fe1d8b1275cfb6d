import type { Client, InArgs, InStatement, ResultSet, Row, TransactionMode } from "@libsql/client";
import { isSole } from "../core/headroom.ts";
import { startWorker, type WorkerPort } from "../platform/worker.ts";
import { DB_WORKER_MODULE } from "../worker-modules.ts";
import type { DbRequest, DbResponse, ReplicaOptions, Statement, WireResult } from "./db-protocol.ts";
import type { SpoolWrite } from "./spool-file.ts";

type Pending = { resolve: (results: WireResult[]) => void; reject: (error: Error) => void };
type DbRequestBody = DbRequest extends infer R ? (R extends DbRequest ? Omit<R, "id"> : never) : never;

/** libSQL's Row: indexed values (not enumerable) and named columns (enumerable), as drizzle expects. */
function toRow(values: unknown[], columns: string[]): Row {
  const row = {} as Record<string | number, unknown>;
  Object.defineProperty(row, "length", { value: values.length });
  values.forEach((value, i) => {
    Object.defineProperty(row, i, { value });
    const column = columns[i]!;
    if (!Object.hasOwn(row, column)) {
      Object.defineProperty(row, column, { value, enumerable: true, configurable: true, writable: true });
    }
  });
  return row as unknown as Row;
}

function toResultSet(wire: WireResult): ResultSet {
  const rows = wire.rows.map((values) => toRow(values, wire.columns));
  return {
    columns: wire.columns,
    columnTypes: wire.columnTypes,
    rows,
    rowsAffected: wire.rowsAffected,
    lastInsertRowid: wire.lastInsertRowid,
    toJSON: () => ({ columns: wire.columns, rows: wire.rows, rowsAffected: wire.rowsAffected }),
  };
}

/** Below this a copy is cheaper than a transfer. */
const TRANSFER_MIN_BYTES = 4096;

/**
 * Message bodies (bound to a statement, or written to the spool) are handed
 * to the worker rather than copied: a byte array that owns its whole buffer
 * (not a slice of a shared pool), or is the only message in a buffer with
 * headroom (src/core/headroom.ts), moves, and the caller must not use it
 * afterwards. Every body the queue writes is a fresh array made for that write.
 */
function transferables(body: DbRequestBody): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const consider = (value: unknown) => {
    const whole = value instanceof Uint8Array && value.buffer instanceof ArrayBuffer && value.byteOffset === 0 &&
      value.byteLength === value.buffer.byteLength;
    if (value instanceof Uint8Array && (whole || isSole(value)) && value.byteLength >= TRANSFER_MIN_BYTES) {
      out.add(value.buffer as ArrayBuffer);
    }
  };
  const stmts = body.op === "execute" ? [body.stmt] : body.op === "batch" ? body.stmts : [];
  for (const stmt of stmts) if (Array.isArray(stmt.args)) stmt.args.forEach(consider);
  if (body.op === "batch") body.write?.parts.forEach(consider);
  return [...out];
}

function statement(stmt: InStatement | string | [string, InArgs?], args?: InArgs): Statement {
  if (typeof stmt === "string") return { sql: stmt, args };
  if (Array.isArray(stmt)) return { sql: stmt[0], args: stmt[1] };
  return stmt;
}

/**
 * Requests handed to the worker at once; the others wait here, where an
 * urgent one can pass them. Enough to keep the worker busy between answers.
 */
const IN_WORKER = 4;

/**
 * A libSQL client whose engine runs in a worker thread: the subset of the
 * Client interface the relay and drizzle use (execute, batch, close).
 * Requests are answered in order, one at a time, by the worker; an urgent
 * one (urgentBatch) goes ahead of those not handed over yet.
 */
export class WorkerClient implements Pick<Client, "execute" | "batch" | "closed" | "protocol"> {
  closed = false;
  readonly protocol = "file";
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Requests not handed to the worker yet, urgent ones first, each kind in order. */
  private readonly waiting: { request: DbRequest; transfer: ArrayBuffer[]; urgent: boolean }[] = [];
  private inWorker = 0;

  private constructor(private readonly port: WorkerPort<DbRequest, DbResponse>) {
    port.onMessage((response) => {
      this.inWorker -= 1;
      this.handOver();
      const waiter = this.pending.get(response.id);
      if (!waiter) return;
      this.pending.delete(response.id);
      if (response.ok) waiter.resolve(response.results);
      else waiter.reject(Object.assign(new Error(response.message), { code: response.code }));
    });
    port.onError((error) => {
      const failure = new Error(`database worker failed: ${error instanceof Error ? error.message : String(error)}`);
      for (const waiter of this.pending.values()) waiter.reject(failure);
      this.pending.clear();
    });
  }

  /** Open a database file (or ":memory:") in a new worker; `readOnly`: for reading only, nothing written. */
  static async open(
    path: string,
    pragmas: readonly string[],
    readOnly = false,
    replica?: ReplicaOptions,
  ): Promise<WorkerClient> {
    const client = new WorkerClient(startWorker<DbRequest, DbResponse>(DB_WORKER_MODULE));
    try {
      await client.request({ op: "open", path, pragmas, readOnly, replica });
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  /** An embedded replica: pull what other writers sent the server since the last sync. */
  async sync(): Promise<void> {
    await this.request({ op: "sync" });
  }

  private request(body: DbRequestBody, urgent = false): Promise<WireResult[]> {
    if (this.closed && body.op !== "close") return Promise.reject(new Error("database is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const entry = { request: { ...body, id } as DbRequest, transfer: transferables(body), urgent };
      const at = urgent ? this.waiting.findIndex((w) => !w.urgent) : -1;
      if (at < 0) this.waiting.push(entry);
      else this.waiting.splice(at, 0, entry);
      this.handOver();
    });
  }

  private handOver(): void {
    while (this.inWorker < IN_WORKER && this.waiting.length > 0) {
      const { request, transfer } = this.waiting.shift()!;
      this.inWorker += 1;
      this.port.post(request, transfer);
    }
  }

  execute(stmt: InStatement): Promise<ResultSet>;
  execute(sql: string, args?: InArgs): Promise<ResultSet>;
  async execute(stmt: InStatement | string, args?: InArgs): Promise<ResultSet> {
    const [result] = await this.request({ op: "execute", stmt: statement(stmt, args) });
    return toResultSet(result!);
  }

  async batch(stmts: Array<InStatement | [string, InArgs?]>, mode?: TransactionMode): Promise<ResultSet[]> {
    const results = await this.request({ op: "batch", stmts: stmts.map((s) => statement(s)), mode });
    return results.map(toResultSet);
  }

  /**
   * A write transaction that goes ahead of every request still waiting: a
   * delivery's outcome, which the destination already holds, so that a crash
   * before it commits (the mail would go out again) is as unlikely as can be.
   */
  async urgentBatch(stmts: InStatement[]): Promise<void> {
    await this.request({ op: "batch", stmts: stmts.map((s) => statement(s)), mode: "write" }, true);
  }

  /** Carry out a spool write, then the batch: one trip to the worker. */
  async batchAfterWrite(write: SpoolWrite, stmts: InStatement[], mode?: TransactionMode): Promise<void> {
    await this.request({ op: "batch", stmts: stmts.map((s) => statement(s)), mode, write });
  }

  /** Close the database after every request sent so far, then stop the worker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.request({ op: "close" });
    } finally {
      this.port.terminate();
    }
  }
}
