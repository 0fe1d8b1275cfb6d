import type { InArgs, InStatement } from "@libsql/client";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "./database.ts";

/** A statement of a write batch: built with drizzle's query builder, or raw SQL. */
export type Statement = BatchItem<"sqlite"> | InStatement;

export function rawStatement(s: Statement): InStatement {
  if (typeof s === "object" && "toSQL" in s && typeof s.toSQL === "function") {
    const { sql: text, params } = s.toSQL();
    return { sql: text, args: params as InArgs };
  }
  return s as InStatement;
}

/** One transaction for query-builder statements and raw ones alike. */
export async function writeBatch(database: Database, statements: readonly Statement[]): Promise<void> {
  if (statements.length === 0) return;
  await database.client.batch(statements.map(rawStatement), "write");
}
