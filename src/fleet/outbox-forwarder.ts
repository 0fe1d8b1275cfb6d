import type { InStatement } from "@libsql/client";
import { errorText, type Logger } from "../core/log.ts";
import type { Database } from "../queue/database.ts";
import type { SharedDatabase } from "./shared-database.ts";
import type { Partition } from "./partition.ts";

/** Statements applied on the server in one transaction, at most. */
const BATCH = 200;

/**
 * Applies the node's outbox (src/queue/shared-writes.ts) on the shared
 * server, oldest first, a batch per transaction, and only then deletes the
 * batch from the outbox. A crash in between applies the batch again, which
 * changes nothing (each statement is an upsert): no write is lost, none
 * counts twice. A failure marks the node partitioned and waits for the next run.
 */
export class OutboxForwarder {
  readonly name = "applying the outbox to the shared database";

  constructor(
    private readonly local: Database,
    private readonly shared: SharedDatabase,
    private readonly partition: Partition,
    private readonly log: Logger,
    readonly everyMs = 1_000,
  ) {}

  /** Statements waiting for the server. */
  async waiting(): Promise<number> {
    const result = await this.local.client.execute("SELECT count(*) AS n FROM shared_outbox");
    return Number(result.rows[0]!.n);
  }

  async run(): Promise<void> {
    for (;;) {
      const result = await this.local.client.execute({
        sql: "SELECT id, statement FROM shared_outbox ORDER BY id LIMIT ?",
        args: [BATCH],
      });
      if (result.rows.length === 0) return;
      const statements = result.rows.map((row) => JSON.parse(String(row.statement)) as InStatement);
      try {
        await this.shared.client.batch(statements, "write");
      } catch (error) {
        if (!refusedStatement(error)) {
          this.partition.failed(error);
          return;
        }
        if (!(await this.#oneByOne(statements))) return;
      }
      this.partition.reached();
      const last = Number(result.rows.at(-1)!.id);
      await this.local.client.execute({ sql: "DELETE FROM shared_outbox WHERE id <= ?", args: [last] });
      if (result.rows.length < BATCH) return;
    }
  }

  /**
   * The server refused the batch for one of its statements: each is applied
   * alone, and one the server refuses is logged and left out rather than
   * holding back every write after it. False when the server stops answering.
   */
  async #oneByOne(statements: readonly InStatement[]): Promise<boolean> {
    for (const statement of statements) {
      try {
        await this.shared.client.execute(statement);
      } catch (error) {
        if (!refusedStatement(error)) {
          this.partition.failed(error);
          return false;
        }
        this.log("error", "the shared database refused a write from the outbox; it is left out", {
          statement: JSON.stringify(statement),
          error: errorText(error),
        });
      }
    }
    return true;
  }
}

/** The server answered, and refused the statement itself (a constraint, an unknown table), as opposed to not answering. */
function refusedStatement(error: unknown): boolean {
  const text = error instanceof Error ? `${(error as { code?: string }).code ?? ""} ${error.message}` : String(error);
  return /SqliteFailure|SQLITE_|constraint failed|no such (table|column)|syntax error/i.test(text);
}
