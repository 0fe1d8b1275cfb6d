import { createHash, randomBytes } from "node:crypto";
import { UsageError } from "../core/errors.ts";
import { DEFAULT_LANE, type Lane } from "../core/lane.ts";
import type { ScanSetting } from "../core/scan-setting.ts";
import { API_SCOPES, type ApiKeyRecord, type ApiScope, type CredentialStore } from "../queue/credentials.ts";
import { domainAllowed, normalizeDomains } from "./users.ts";

export { API_SCOPES };
export type { ApiKeyRecord, ApiScope };

/**
 * HTTP API keys. The token the client presents is
 *
 *   rk_<id>_<secret>
 *
 * with a 12-character id (lower-case letters and digits, also the key's
 * public name in lists and `keys revoke`) and 32 random bytes of secret in
 * base64url (43 characters). Only the SHA-256 (hex) of the whole token is
 * stored: the secret is long and random, so a slow hash adds nothing.
 */
const ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
const ID_LENGTH = 12;
const SECRET_BYTES = 32;
const TOKEN = /^rk_([0-9a-z]{12})_([A-Za-z0-9_-]{43})$/;
const MAX_NAME_LENGTH = 100;

export function hashApiToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The id inside a token of the right shape, else undefined. */
export function apiTokenId(token: string): string | undefined {
  return TOKEN.exec(token)?.[1];
}

/**
 * Scopes as given (each may be a comma list); default ["send"]. Throws
 * UsageError naming every unknown one.
 */
export function parseScopes(values: readonly string[] | undefined): ApiScope[] {
  const wanted = (values ?? []).flatMap((v) => v.split(",")).map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
  if (wanted.length === 0) return ["send"];
  const unknown = wanted.filter((s) => !(API_SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    throw new UsageError(
      unknown.map((s) => `scope ${JSON.stringify(s)} is not valid: expected one of ${API_SCOPES.join(", ")}`),
    );
  }
  return API_SCOPES.filter((s) => wanted.includes(s));
}

/** Whether the key grants `scope`; admin grants every scope. */
export function keyHasScope(key: Pick<ApiKeyRecord, "scopes">, scope: ApiScope): boolean {
  return key.scopes.includes(scope) || key.scopes.includes("admin");
}

export class ApiKeyService {
  constructor(private readonly store: CredentialStore) {}

  /**
   * Make a key; its mail is transactional unless `lane` says otherwise, and scanned as RELAY_MILTER_SCOPE says unless `scan`
   * does. The token is returned here and nowhere else: it is not stored. Throws UsageError for an unknown scope, a bad domain
   * or name.
   */
  async create(
    input: { name?: string; scopes?: readonly string[]; domains?: readonly string[]; lane?: Lane; scan?: ScanSetting },
  ): Promise<{
    record: ApiKeyRecord;
    token: string;
  }> {
    const name = (input.name ?? "").trim();
    const problems: string[] = [];
    if (name.length > MAX_NAME_LENGTH || /[\x00-\x1f\x7f]/.test(name)) {
      problems.push(`key name is not valid: expected at most ${MAX_NAME_LENGTH} characters without control characters`);
    }
    let scopes: ApiScope[] = [];
    let domains: string[] = [];
    for (
      const step of [
        () => (scopes = parseScopes(input.scopes)),
        () => (domains = normalizeDomains(input.domains ?? [])),
      ]
    ) {
      try {
        step();
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        problems.push(...error.problems);
      }
    }
    if (problems.length > 0) throw new UsageError(problems);
    const id = newKeyId();
    const token = `rk_${id}_${randomBytes(SECRET_BYTES).toString("base64url")}`;
    const lane = input.lane ?? DEFAULT_LANE;
    const scan = input.scan ?? null;
    const record = await this.store.addApiKey({ id, name, scopes, domains, lane, scan }, hashApiToken(token));
    return { record, token };
  }

  /** The live key this token belongs to, or undefined (malformed, unknown or revoked). */
  async verify(token: string): Promise<ApiKeyRecord | undefined> {
    const id = apiTokenId(token);
    if (id === undefined) return undefined;
    const record = await this.store.findApiKey(hashApiToken(token));
    return record && record.id === id && record.revokedAt === null ? record : undefined;
  }

  /** Every key, revoked ones included, oldest first. Never the secret. */
  list(): Promise<ApiKeyRecord[]> {
    return this.store.listApiKeys();
  }

  /** Returns false when no live key has this id. */
  revoke(id: string): Promise<boolean> {
    return this.store.revokeApiKey(id);
  }

  /** Whether `key` may use `senderDomain` (empty grant = any; exact, case-insensitive match). */
  maySendFrom(key: Pick<ApiKeyRecord, "domains">, senderDomain: string): boolean {
    return domainAllowed(key.domains, senderDomain);
  }
}

function newKeyId(): string {
  // 36 does not divide 256: reject the top bytes so every character is equally likely.
  let id = "";
  while (id.length < ID_LENGTH) {
    for (const byte of randomBytes(ID_LENGTH * 2)) {
      if (byte < 252 && id.length < ID_LENGTH) id += ID_ALPHABET[byte % 36];
    }
  }
  return id;
}
