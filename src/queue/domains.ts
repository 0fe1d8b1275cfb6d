import { and, asc, desc, eq, inArray, lte, sql } from "drizzle-orm";
import type { Database } from "./database.ts";
import { dkimKeys, type DkimKeyState, sendingDomains } from "./schema.ts";

export type DkimAlgorithmName = (typeof dkimKeys.$inferSelect)["algorithm"];

/** A key as everyone but the signer sees it: no private key. */
export interface DkimKeyInfo {
  readonly id: string;
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithmName;
  /** The p= value. */
  readonly publicKey: string;
  readonly state: DkimKeyState;
  readonly createdAt: number;
  readonly activatedAt: number | null;
  readonly retireAfter: number | null;
}

export interface SendingDomainRecord {
  readonly domain: string;
  readonly createdAt: number;
  readonly lastCheck: Record<string, unknown> | null;
  readonly lastCheckedAt: number | null;
  /** First time a check saw an active key's DKIM record published (RELAY_SENDER_POLICY); null: never. */
  readonly verifiedAt: number | null;
  readonly keys: readonly DkimKeyInfo[];
}

export interface NewDkimKey {
  readonly id: string;
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithmName;
  readonly privateKey: string;
  readonly publicKey: string;
  readonly state: "active" | "pending";
}

const INFO_COLUMNS = {
  id: dkimKeys.id,
  domain: dkimKeys.domain,
  selector: dkimKeys.selector,
  algorithm: dkimKeys.algorithm,
  publicKey: dkimKeys.publicKey,
  state: dkimKeys.state,
  createdAt: dkimKeys.createdAt,
  activatedAt: dkimKeys.activatedAt,
  retireAfter: dkimKeys.retireAfter,
};

/** Sending domains and their DKIM keys. */
export class DomainStore {
  constructor(private readonly database: Database) {}

  /** Returns false when the domain is there already. */
  async addDomain(domain: string, now: number): Promise<boolean> {
    const result = await this.database.db.insert(sendingDomains).values({ domain, createdAt: now })
      .onConflictDoNothing();
    return result.rowsAffected === 1;
  }

  /** Returns false when the domain already has this selector. */
  async addKey(key: NewDkimKey, now: number): Promise<boolean> {
    const result = await this.database.db
      .insert(dkimKeys)
      .values({ ...key, createdAt: now, activatedAt: key.state === "active" ? now : null })
      .onConflictDoNothing();
    return result.rowsAffected === 1;
  }

  async getDomain(domain: string): Promise<SendingDomainRecord | undefined> {
    const [row] = await this.database.db.select().from(sendingDomains).where(eq(sendingDomains.domain, domain));
    if (!row) return undefined;
    const keys = await this.database.db.select(INFO_COLUMNS).from(dkimKeys).where(eq(dkimKeys.domain, domain)).orderBy(
      asc(dkimKeys.createdAt),
      asc(sql`rowid`),
    );
    return { ...row, keys };
  }

  async listDomains(): Promise<SendingDomainRecord[]> {
    const rows = await this.database.db.select().from(sendingDomains).orderBy(asc(sendingDomains.domain));
    const keys = await this.database.db.select(INFO_COLUMNS).from(dkimKeys).orderBy(
      asc(dkimKeys.createdAt),
      asc(sql`rowid`),
    );
    return rows.map((row) => ({ ...row, keys: keys.filter((k) => k.domain === row.domain) }));
  }

  /** The active keys of a domain with their private keys: for the signer only. */
  async signingKeys(domain: string): Promise<{ selector: string; algorithm: DkimAlgorithmName; privateKey: string }[]> {
    return this.database.db
      .select({ selector: dkimKeys.selector, algorithm: dkimKeys.algorithm, privateKey: dkimKeys.privateKey })
      .from(dkimKeys)
      .where(and(eq(dkimKeys.domain, domain), eq(dkimKeys.state, "active")))
      .orderBy(desc(dkimKeys.algorithm)); // rsa before ed25519: the widely verified signature first
  }

  /** Domains with a key waiting for its DNS record. */
  async domainsWithPendingKeys(): Promise<string[]> {
    const rows = await this.database.db.selectDistinct({ domain: dkimKeys.domain }).from(dkimKeys).where(
      eq(dkimKeys.state, "pending"),
    );
    return rows.map((r) => r.domain);
  }

  /**
   * A pending key whose record is visible becomes the active one of its
   * algorithm; the key it replaces keeps its record listed until `retireAfter`.
   * One transaction, so a signer never sees two active keys of one algorithm.
   */
  async promote(keyId: string, now: number, retireAfter: number): Promise<boolean> {
    const [, promoted] = await this.database.client.batch(
      [
        {
          sql: `UPDATE dkim_keys SET state = 'retiring', retire_after = ?
                WHERE state = 'active' AND (domain, algorithm) IN (SELECT domain, algorithm FROM dkim_keys WHERE id = ? AND state = 'pending')`,
          args: [retireAfter, keyId],
        },
        {
          sql: `UPDATE dkim_keys SET state = 'active', activated_at = ? WHERE id = ? AND state = 'pending'`,
          args: [now, keyId],
        },
      ],
      "write",
    );
    return promoted?.rowsAffected === 1;
  }

  /** Retiring keys past their grace period become retired; returns how many. */
  async retireExpired(now: number): Promise<number> {
    const result = await this.database.db
      .update(dkimKeys)
      .set({ state: "retired" })
      .where(and(eq(dkimKeys.state, "retiring"), lte(dkimKeys.retireAfter, now)));
    return result.rowsAffected;
  }

  async saveCheck(domain: string, check: Record<string, unknown>, now: number): Promise<void> {
    await this.database.db.update(sendingDomains).set({ lastCheck: check, lastCheckedAt: now }).where(
      eq(sendingDomains.domain, domain),
    );
  }

  /**
   * Save a check and the `domain_changed` events it found, in one
   * transaction. The events are written only if the check they were compared
   * with is still the last one (`last_checked_at` unchanged): of two checks
   * racing (the periodic one and `domains check`), only one reports a change.
   */
  async saveCheckWithEvents(
    domain: string,
    check: Record<string, unknown>,
    now: number,
    previousCheckedAt: number | null,
    changes: readonly Record<string, unknown>[],
  ): Promise<void> {
    await this.database.client.batch(
      [
        ...changes.map((data) => ({
          sql: `INSERT INTO events (at, type, message_id, recipient, data)
                SELECT ?, 'domain_changed', NULL, NULL, ? FROM sending_domains WHERE domain = ? AND last_checked_at IS ?`,
          args: [now, JSON.stringify(data), domain, previousCheckedAt],
        })),
        {
          sql: "UPDATE sending_domains SET last_check = ?, last_checked_at = ? WHERE domain = ?",
          args: [JSON.stringify(check), now, domain],
        },
      ],
      "write",
    );
  }

  /** The domain's DKIM record was seen in DNS: remember the first time (never cleared). */
  async markVerified(domain: string, now: number): Promise<void> {
    await this.database.client.execute({
      sql: "UPDATE sending_domains SET verified_at = ? WHERE domain = ? AND verified_at IS NULL",
      args: [now, domain],
    });
  }

  /** When the domain was first verified; undefined when it is not a sending domain or never was. */
  async verifiedAt(domain: string): Promise<number | undefined> {
    const result = await this.database.client.execute({
      sql: "SELECT verified_at FROM sending_domains WHERE domain = ?",
      args: [domain],
    });
    const at = result.rows[0]?.verified_at;
    return at === null || at === undefined ? undefined : Number(at);
  }

  /** Every selector of these domains (taken names for new selectors). */
  async selectors(domains: readonly string[]): Promise<string[]> {
    if (domains.length === 0) return [];
    const rows = await this.database.db.select({ selector: dkimKeys.selector }).from(dkimKeys).where(
      inArray(dkimKeys.domain, [...domains]),
    );
    return rows.map((r) => r.selector);
  }
}
