import type { InStatement } from "@libsql/client";
import { and, asc, eq, isNull, lt } from "drizzle-orm";
import type { Clock } from "../core/clock.ts";
import type { Lane } from "../core/lane.ts";
import type { ScanSetting } from "../core/scan-setting.ts";
import type { Database } from "./database.ts";
import { apiKeys, idempotencyKeys, users } from "./schema.ts";
import { rawStatement } from "./write-batch.ts";

export const API_SCOPES = ["send", "read", "admin"] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export interface UserRecord {
  readonly name: string;
  readonly passwordHash: string;
  /** Sender domains the user may use; empty means any. */
  readonly domains: readonly string[];
  /** The priority lane of the user's mail when the message names none. */
  readonly lane: Lane;
  /** Content scanning of the user's mail: true always, false never, null as RELAY_MILTER_SCOPE says. */
  readonly scan: ScanSetting;
  readonly createdAt: number;
}

export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly ApiScope[];
  /** Sender domains the key may use; empty means any. */
  readonly domains: readonly string[];
  /** The priority lane of the key's mail when the request names none. */
  readonly lane: Lane;
  /** Content scanning of the key's mail: true always, false never, null as RELAY_MILTER_SCOPE says. */
  readonly scan: ScanSetting;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

export interface StoredResponse {
  readonly requestHash: string;
  readonly status: number;
  readonly response: string;
}

/** SMTP users, API keys and idempotency records: who may do what. */
export class CredentialStore {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  /** Returns false when the name is taken. */
  async addUser(
    name: string,
    passwordHash: string,
    domains: readonly string[],
    lane: Lane,
    scan: ScanSetting,
  ): Promise<boolean> {
    const result = await this.database.db
      .insert(users)
      .values({ name, passwordHash, domains: [...domains], lane, scan, createdAt: this.clock.now() })
      .onConflictDoNothing();
    return result.rowsAffected === 1;
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    const [row] = await this.database.db.select().from(users).where(eq(users.name, name));
    return row;
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.database.db.select().from(users).orderBy(asc(users.name));
  }

  async removeUser(name: string): Promise<boolean> {
    const result = await this.database.db.delete(users).where(eq(users.name, name));
    return result.rowsAffected === 1;
  }

  async addApiKey(record: Omit<ApiKeyRecord, "createdAt" | "revokedAt">, secretHash: string): Promise<ApiKeyRecord> {
    const row = {
      ...record,
      scopes: [...record.scopes],
      domains: [...record.domains],
      secretHash,
      createdAt: this.clock.now(),
    };
    await this.database.db.insert(apiKeys).values(row);
    return { ...record, createdAt: row.createdAt, revokedAt: null };
  }

  /** The live (not revoked) key with this secret hash. */
  async findApiKey(secretHash: string): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.database.db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.secretHash, secretHash), isNull(apiKeys.revokedAt)));
    return row ? toApiKey(row) : undefined;
  }

  /** Whether the key with this id exists and is not revoked. */
  async apiKeyLive(id: string): Promise<boolean> {
    const [row] = await this.database.db
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)));
    return row !== undefined;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = await this.database.db.select().from(apiKeys).orderBy(asc(apiKeys.createdAt));
    return rows.map(toApiKey);
  }

  /** Returns false when no live key has this id. */
  async revokeApiKey(id: string): Promise<boolean> {
    const result = await this.database.db
      .update(apiKeys)
      .set({ revokedAt: this.clock.now() })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)));
    return result.rowsAffected === 1;
  }

  /** The answer stored for (owner, key) within `maxAgeMs`, if any. */
  async findResponse(owner: string, key: string, maxAgeMs: number): Promise<StoredResponse | undefined> {
    const [row] = await this.database.db
      .select()
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.owner, owner), eq(idempotencyKeys.key, key)));
    if (!row || row.createdAt < this.clock.now() - maxAgeMs) return undefined;
    return row;
  }

  async storeResponse(owner: string, key: string, value: StoredResponse): Promise<void> {
    await this.database.client.execute(this.responseUpsert(owner, key, value));
  }

  /** The statement storeResponse runs: an upsert, so that running it again changes nothing. */
  responseUpsert(owner: string, key: string, value: StoredResponse): InStatement {
    const row = { owner, key, ...value, createdAt: this.clock.now() };
    return rawStatement(
      this.database.db
        .insert(idempotencyKeys)
        .values(row)
        .onConflictDoUpdate({ target: [idempotencyKeys.owner, idempotencyKeys.key], set: row }),
    );
  }

  /** Forget idempotency records older than `maxAgeMs`. */
  async pruneResponses(maxAgeMs: number): Promise<number> {
    const result = await this.database.db.delete(idempotencyKeys).where(
      lt(idempotencyKeys.createdAt, this.clock.now() - maxAgeMs),
    );
    return result.rowsAffected;
  }
}

function toApiKey(row: typeof apiKeys.$inferSelect): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes.filter((s): s is ApiScope => (API_SCOPES as readonly string[]).includes(s)),
    domains: row.domains,
    lane: row.lane,
    scan: row.scan,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
  };
}
