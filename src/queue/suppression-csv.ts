/**
 * The suppression list as CSV (RFC 4180 fields, one record a line): what
 * `relay suppressions export` writes and `import` reads.
 */
import * as v from "valibot";
import { suppressionInputSchema, suppressionOf } from "./suppression-input.ts";
import { formatScope, type NewSuppression, type Suppression } from "./suppressions.ts";

/** The export's columns; an import reads the same header (address alone is enough). */
export const CSV_COLUMNS = [
  "address",
  "scope",
  "reason",
  "source_event",
  "source_message_id",
  "created_at",
  "expires_at",
] as const;

const quoted = (field: string) => (/[",\r\n]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field);

export function csvLine(fields: readonly string[]): string {
  return fields.map(quoted).join(",");
}

export function suppressionCsvLine(e: Suppression): string {
  return csvLine([
    e.address,
    formatScope(e.scope),
    e.reason,
    e.source?.event ?? "",
    e.source?.messageId ?? "",
    new Date(e.createdAt).toISOString(),
    e.expiresAt === undefined ? "" : new Date(e.expiresAt).toISOString(),
  ]);
}

/** One line's fields, or an error: quotes must be balanced and close a field. */
export function parseCsvLine(line: string): { fields: string[] } | { error: string } {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let field = "";
      i++;
      for (;;) {
        const close = line.indexOf('"', i);
        if (close < 0) return { error: "a quoted field is not closed" };
        field += line.slice(i, close);
        i = close + 1;
        if (line[i] !== '"') break;
        field += '"';
        i++;
      }
      if (i < line.length && line[i] !== ",") return { error: `text after a quoted field at column ${i + 1}` };
      fields.push(field);
    } else {
      const comma = line.indexOf(",", i);
      const end = comma < 0 ? line.length : comma;
      const field = line.slice(i, end);
      if (field.includes('"')) return { error: `a quote inside an unquoted field at column ${i + 1}` };
      fields.push(field);
      i = end;
    }
    if (i >= line.length) return { fields };
    i++; // the comma
    if (i === line.length) return { fields: [...fields, ""] };
  }
}

/** Entries per transaction of an import: memory stays flat however long the file. */
const IMPORT_BATCH = 1000;

export interface ImportResult {
  readonly imported: number;
  readonly refused: number;
}

/**
 * Read CSV lines and add the entries they name, a batch per transaction.
 * A first line whose first field is "address" is the header and says which
 * column is which (CSV_COLUMNS names; others are ignored); without one, the
 * columns are CSV_COLUMNS in order. A line that cannot be read or names an
 * invalid entry is reported with its number (from 1) and skipped; the rest
 * are imported. Reason default: import. created_at is the import's time.
 */
export async function importSuppressionCsv(
  lines: AsyncIterable<string>,
  add: (entries: readonly NewSuppression[]) => Promise<void>,
  refused: (line: number, problems: readonly string[]) => void,
): Promise<ImportResult> {
  let columns: readonly string[] = CSV_COLUMNS;
  let number = 0;
  let imported = 0;
  let bad = 0;
  let batch: NewSuppression[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await add(batch);
    imported += batch.length;
    batch = [];
  };
  for await (const raw of lines) {
    number++;
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") continue;
    const parsed = parseCsvLine(line);
    if ("error" in parsed) {
      bad++;
      refused(number, [parsed.error]);
      continue;
    }
    if (number === 1 && parsed.fields[0]?.trim().toLowerCase() === "address") {
      columns = parsed.fields.map((f) => f.trim().toLowerCase());
      continue;
    }
    const record: Record<string, string> = {};
    columns.forEach((name, i) => {
      const value = parsed.fields[i]?.trim();
      if (value !== undefined && value !== "") record[name] = value;
    });
    const checked = v.safeParse(suppressionInputSchema, {
      address: record.address ?? "",
      scope: record.scope,
      reason: record.reason,
      expires_at: record.expires_at,
    }, { abortEarly: false });
    if (!checked.success) {
      bad++;
      refused(number, checked.issues.map((issue) => `${v.getDotPath(issue) ?? "line"}: ${issue.message}`));
      continue;
    }
    const entry = suppressionOf(checked.output, "import");
    batch.push(
      record.source_event === undefined
        ? entry
        : { ...entry, source: { event: record.source_event, messageId: record.source_message_id } },
    );
    if (batch.length >= IMPORT_BATCH) await flush();
  }
  await flush();
  return { imported, refused: bad };
}
