/** Messages between the main thread and the database worker (structured-clone friendly). */
import type { SpoolWrite } from "./spool-file.ts";

export type Statement = { readonly sql: string; readonly args?: unknown };

/**
 * An embedded replica of a libSQL server: reads are local, writes are sent
 * to the server (and seen locally at once), and the replica pulls what other
 * writers did every `syncPeriodS` seconds.
 */
export interface ReplicaOptions {
  readonly syncUrl: string;
  readonly authToken?: string;
  readonly syncPeriodS: number;
}

export type DbRequest =
  | {
    readonly id: number;
    readonly op: "open";
    readonly path: string;
    readonly pragmas: readonly string[];
    readonly readOnly?: boolean;
    readonly replica?: ReplicaOptions;
  }
  | { readonly id: number; readonly op: "execute"; readonly stmt: Statement }
  /** `write` (bodies into the spool) is carried out first; the batch runs only if it succeeded. */
  | {
    readonly id: number;
    readonly op: "batch";
    readonly stmts: readonly Statement[];
    readonly mode?: string;
    readonly write?: SpoolWrite;
  }
  /** A replica only: pull what the server has that the replica lacks, now. */
  | { readonly id: number; readonly op: "sync" }
  | { readonly id: number; readonly op: "close" };

/** A result set without libSQL's Row objects, which do not survive structured clone. */
export interface WireResult {
  readonly columns: string[];
  readonly columnTypes: string[];
  readonly rows: unknown[][];
  readonly rowsAffected: number;
  readonly lastInsertRowid: bigint | undefined;
}

export type DbResponse =
  | { readonly id: number; readonly ok: true; readonly results: WireResult[] }
  | { readonly id: number; readonly ok: false; readonly message: string; readonly code?: string };
