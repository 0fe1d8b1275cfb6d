import type { Database } from "./database.ts";
import type { RecipientState } from "./schema.ts";

/** One recipient of a message found by a search. */
export interface MessageHit {
  readonly messageId: string;
  readonly createdAt: number;
  readonly mailFrom: string;
  readonly address: string;
  readonly state: RecipientState;
  readonly attempts: number;
  readonly lastReply: string | null;
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/i;

const HIT_COLUMNS = `m.id AS message_id, m.created_at, m.mail_from, r.address, r.state, r.attempts, r.last_reply
  FROM recipients AS r JOIN messages AS m ON m.id = r.message_id`;

/**
 * The dashboard's message search: a message id, an address (a recipient or
 * the envelope sender, in any case) or `@domain` (its recipients). Newest
 * first; the walk goes back through the recipients by id and stops at the
 * limit, so a common address answers at once and a rare one costs a pass
 * over the queue's rows (there is no index by address: it would cost every
 * acceptance to serve an occasional search).
 */
export class MessageSearch {
  constructor(private readonly database: Database) {}

  async search(text: string, limit: number): Promise<MessageHit[]> {
    const query = text.trim();
    if (query === "") return [];
    const { sql, args } = ULID.test(query)
      ? { sql: `SELECT ${HIT_COLUMNS} WHERE m.id = ? ORDER BY r.id LIMIT ?`, args: [query.toUpperCase()] }
      : query.startsWith("@")
      ? {
        sql: `SELECT ${HIT_COLUMNS} WHERE r.domain = ? ORDER BY r.id DESC LIMIT ?`,
        args: [query.slice(1).toLowerCase()],
      }
      : {
        sql: `SELECT ${HIT_COLUMNS} WHERE r.address = ?1 COLLATE NOCASE OR m.mail_from = ?1 COLLATE NOCASE
              ORDER BY r.id DESC LIMIT ?2`,
        args: [query],
      };
    const result = await this.database.client.execute({ sql, args: [...args, limit] });
    return result.rows.map((row) => ({
      messageId: String(row.message_id),
      createdAt: Number(row.created_at),
      mailFrom: String(row.mail_from),
      address: String(row.address),
      state: String(row.state) as RecipientState,
      attempts: Number(row.attempts),
      lastReply: row.last_reply === null ? null : String(row.last_reply),
    }));
  }
}
