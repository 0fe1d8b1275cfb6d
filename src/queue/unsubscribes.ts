import { eq, sql } from "drizzle-orm";
import type { Clock } from "../core/clock.ts";
import type { Database } from "./database.ts";
import { messages, recipients, settings } from "./schema.ts";

/** The recipient an unsubscribe token names, and what its event and suppression need of its message. */
export interface UnsubscribeTarget {
  readonly messageId: string;
  readonly address: string;
  /** The message's envelope sender ("" for the null reverse-path). */
  readonly mailFrom: string;
}

const KEY_SETTING = "unsubscribe_key";

/** What unsubscribing reads and writes (src/unsubscribe/): the token key, the recipient, the `unsubscribed` event. */
export class UnsubscribeStore {
  constructor(private readonly database: Database, private readonly clock: Clock) {}

  /** The node's token key, made (random, 256 bits) at first use and kept in the settings. */
  async key(fresh: () => Uint8Array): Promise<Uint8Array> {
    const made = Buffer.from(fresh()).toString("hex");
    await this.database.db.insert(settings).values({ key: KEY_SETTING, value: made }).onConflictDoNothing();
    const [row] = await this.database.db.select().from(settings).where(eq(settings.key, KEY_SETTING));
    return Buffer.from(row!.value, "hex");
  }

  /** Undefined once the message is gone (cancelled before acceptance, or past RELAY_RETENTION). */
  async target(recipientId: number): Promise<UnsubscribeTarget | undefined> {
    const [row] = await this.database.db
      .select({ messageId: recipients.messageId, address: recipients.address, mailFrom: messages.mailFrom })
      .from(recipients)
      .innerJoin(messages, eq(messages.id, recipients.messageId))
      .where(eq(recipients.id, recipientId));
    return row;
  }

  /**
   * The recipient's `unsubscribed` event, once: one statement, so that two
   * clicks at the same moment still write one. False when it was there already.
   */
  async recordUnsubscribed(target: UnsubscribeTarget, data: Record<string, unknown>): Promise<boolean> {
    const result = await this.database.db.run(sql`
      insert into events (at, type, message_id, recipient, data)
      select ${this.clock.now()}, 'unsubscribed', ${target.messageId}, ${target.address}, ${JSON.stringify(data)}
      where not exists (
        select 1 from events
        where message_id = ${target.messageId} and recipient = ${target.address} and type = 'unsubscribed'
      )`);
    return result.rowsAffected === 1;
  }
}
