/**
 * The database worker: libSQL's embedded engine runs synchronously, fsync
 * included, so it lives on its own thread; SMTP sessions on the main thread
 * go on while a commit reaches the disk.
 */
import { createClient, type Client, type InStatement, type ResultSet, type TransactionMode } from "@libsql/client";
import type { DbRequest, DbResponse, WireResult } from "./db-protocol.ts";

declare const self: {
  onmessage: ((event: { data: DbRequest }) => void) | null;
  postMessage(message: DbResponse, transfer?: ArrayBuffer[]): void;
};

/** Below this a copy is cheaper than a transfer. */
const TRANSFER_MIN_BYTES = 4096;

/**
 * Large blobs (message bodies) go back to the main thread moved, not copied.
 * libSQL gives each blob value its own ArrayBuffer (a copy out of SQLite), so
 * moving it takes nothing from anyone else here.
 */
function blobsOf(results: readonly WireResult[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const result of results) {
    for (const row of result.rows) {
      for (const value of row) if (value instanceof ArrayBuffer && value.byteLength >= TRANSFER_MIN_BYTES) out.push(value);
    }
  }
  return out;
}

let client: Client | undefined;

function toWire(result: ResultSet): WireResult {
  return {
    columns: result.columns,
    columnTypes: result.columnTypes,
    rows: result.rows.map((row) => Array.prototype.slice.call(row) as unknown[]),
    rowsAffected: result.rowsAffected,
    lastInsertRowid: result.lastInsertRowid,
  };
}

async function handle(request: DbRequest): Promise<WireResult[]> {
  switch (request.op) {
    case "open":
      // One connection: the pragmas below (synchronous=FULL above all) are per connection.
      client = createClient({ url: request.url, authToken: request.authToken, concurrency: 1 });
      for (const pragma of request.pragmas) await client.execute(pragma);
      return [];
    case "execute":
      return [toWire(await client!.execute(request.stmt as InStatement))];
    case "batch":
      return (await client!.batch(request.stmts as InStatement[], request.mode as TransactionMode)).map(toWire);
    case "close":
      client?.close();
      client = undefined;
      return [];
  }
}

self.onmessage = (event) => {
  const request = event.data;
  handle(request).then(
    (results) => self.postMessage({ id: request.id, ok: true, results }, blobsOf(results)),
    (error: unknown) =>
      self.postMessage({
        id: request.id,
        ok: false,
        message: error instanceof Error ? error.message : String(error),
        code: (error as { code?: string }).code,
      }),
  );
};
