import { eq, getTableColumns, sql } from "drizzle-orm";
import type { Database } from "./database.ts";
import { warmupState } from "./schema.ts";

/** One source IP and provider's warmup state, as stored. */
export type WarmupRow = typeof warmupState.$inferSelect;

/** Rows per statement: 14 columns each, well under SQLite's limit of bound variables. */
const ROWS_PER_INSERT = 500;

/** An upsert replaces every column but the key with the row written. */
const REPLACED = Object.fromEntries(
  Object.entries(getTableColumns(warmupState))
    .filter(([name]) => name !== "sourceIp" && name !== "provider")
    .map(([name, column]) => [name, sql.raw(`excluded.${column.name}`)]),
);

/** The warmup state (src/shaping/warmup-ledger.ts keeps it; this table survives restarts). */
export class WarmupStore {
  constructor(private readonly database: Database) {}

  /** Every row, or in a fleet's shared state those of this node's source IP (canonical form). */
  async load(sourceIp?: string): Promise<WarmupRow[]> {
    const rows = this.database.db.select().from(warmupState);
    return await (sourceIp === undefined ? rows : rows.where(eq(warmupState.sourceIp, sourceIp)));
  }

  /** Write the rows over the stored ones, in one transaction. */
  async save(rows: readonly WarmupRow[]): Promise<void> {
    const { db } = this.database;
    const statements = [];
    for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
      statements.push(
        db.insert(warmupState).values(rows.slice(i, i + ROWS_PER_INSERT)).onConflictDoUpdate({
          target: [warmupState.sourceIp, warmupState.provider],
          set: REPLACED,
        }),
      );
    }
    const [first, ...rest] = statements;
    if (first) await db.batch([first, ...rest]);
  }
}
