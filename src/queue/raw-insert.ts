import type { InStatement } from "@libsql/client";

/** Rows per INSERT: well under SQLite's limit of bound variables per statement. */
const ROWS_PER_INSERT = 500;

const placeholders = new Map<string, string>();

function valuesClause(columns: number, rows: number): string {
  const key = `${columns}x${rows}`;
  let text = placeholders.get(key);
  if (text === undefined) {
    const row = `(${Array(columns).fill("?").join(", ")})`;
    text = Array(rows).fill(row).join(", ");
    placeholders.set(key, text);
  }
  return text;
}

/**
 * Multi-row INSERTs written directly, without the query builder: on the
 * acceptance path building SQL costs more than running it. Values must
 * already be in their stored form (JSON as text, blobs as bytes). `suffix`
 * follows the VALUES (an ON CONFLICT clause).
 */
export function insertRows(
  table: string,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
  suffix = "",
): InStatement[] {
  const statements: InStatement[] = [];
  const head = `INSERT INTO ${table} (${columns.join(", ")}) VALUES `;
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const chunk = rows.slice(i, i + ROWS_PER_INSERT);
    statements.push({
      sql: head + valuesClause(columns.length, chunk.length) + suffix,
      args: chunk.flat() as InStatement extends { args?: infer A } ? A : never,
    });
  }
  return statements;
}
