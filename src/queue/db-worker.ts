/**
 * The database worker: libSQL's embedded engine runs synchronously, fsync
 * included, so it lives on its own thread; SMTP sessions on the main thread
 * go on while a commit reaches the disk.
 */
import type { DbRequest, DbResponse, WireResult } from "./db-protocol.ts";
import { SpoolFileWriter } from "./spool-file.ts";
import { SqliteEngine } from "./sqlite-engine.ts";

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
      for (const value of row) {
        if (value instanceof ArrayBuffer && value.byteLength >= TRANSFER_MIN_BYTES) out.push(value);
      }
    }
  }
  return out;
}

let engine: SqliteEngine | undefined;
const spool = new SpoolFileWriter();

function handle(request: DbRequest): WireResult[] {
  switch (request.op) {
    case "open":
      // One connection: the pragmas below (synchronous=FULL above all) are per connection.
      engine = new SqliteEngine(request.path, request.readOnly, request.replica);
      for (const pragma of request.pragmas) engine.execute({ sql: pragma });
      return [];
    case "execute":
      return [engine!.execute(request.stmt)];
    case "batch":
      if (request.write) spool.write(request.write);
      return engine!.batch(request.stmts, request.mode);
    case "sync":
      engine!.sync();
      return [];
    case "close":
      spool.close();
      engine?.close();
      engine = undefined;
      return [];
  }
}

self.onmessage = (event) => {
  const request = event.data;
  let results: WireResult[];
  try {
    results = handle(request);
  } catch (error) {
    self.postMessage({
      id: request.id,
      ok: false,
      message: error instanceof Error ? error.message : String(error),
      code: (error as { code?: string }).code,
    });
    return;
  }
  self.postMessage({ id: request.id, ok: true, results }, blobsOf(results));
};
