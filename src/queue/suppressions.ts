/**
 * The suppression list: addresses the relay accepts mail for but never sends
 * to (a hard bounce, a complaint, an unsubscribe, the operator's word).
 * Ingress looks every message's recipients up here in one indexed query;
 * delivery's hard bounces, inbound complaints and unsubscribes add entries
 * through `add` (or, for delivery, `suppressionUpsert` inside the outcome's
 * own transaction).
 *
 * Addresses are compared whole in lower case, local part included. RFC 5321
 * 2.4 lets a host treat local parts case-sensitively, but virtually no
 * mailbox provider does, and the list exists so that a known-bad address is
 * never mailed twice: Bob@example.com must not slip past a suppressed
 * bob@example.com. Domains are compared as DNS does (A-labels).
 */
import type { InStatement } from "@libsql/client";
import { asciiDomain } from "../core/address.ts";
import type { Clock } from "../core/clock.ts";
import type { Database } from "./database.ts";
import { insertRows } from "./raw-insert.ts";
import { suppressionReasons } from "./schema.ts";

export type SuppressionScope =
  | { readonly kind: "global" }
  | { readonly kind: "principal"; readonly id: string }
  | { readonly kind: "domain"; readonly domain: string };

export type SuppressionReason = (typeof suppressionReasons)[number];
export { suppressionReasons };

export interface NewSuppression {
  readonly address: string;
  readonly scope: SuppressionScope;
  readonly reason: SuppressionReason;
  readonly source?: { readonly event: string; readonly messageId?: string };
  /** Ms since the epoch; absent: never expires. */
  readonly expiresAt?: number;
}

export interface Suppression extends NewSuppression {
  readonly createdAt: number;
}

/** Who submits a message, for the scoped entries that apply to it. */
export interface SuppressionContext {
  /** The API key id, "admin", or the SMTP user name; absent: only global and domain entries apply. */
  readonly principal?: string;
  /** The sending domain (the From header's, else the envelope sender's). */
  readonly domain?: string;
}

/** The last entry of a page; the next page starts after it. */
export type SuppressionCursor = readonly [address: string, scopeKind: string, scopeValue: string];

/** The normalised form stored and compared: lower case throughout, the domain as its A-label. */
export function normalizeSuppressedAddress(address: string): string {
  const text = address.trim();
  const at = text.lastIndexOf("@");
  if (at < 0) return text.toLowerCase();
  return `${text.slice(0, at).toLowerCase()}@${asciiDomain(text.slice(at + 1))}`;
}

export function scopeColumns(scope: SuppressionScope): [kind: string, value: string] {
  switch (scope.kind) {
    case "global":
      return ["global", ""];
    case "principal":
      return ["principal", scope.id];
    case "domain":
      return ["domain", asciiDomain(scope.domain)];
  }
}

/** "global", "principal:ID" or "domain:D": the scope as the API, CLI and CSV write it. */
export function formatScope(scope: SuppressionScope): string {
  const [kind, value] = scopeColumns(scope);
  return kind === "global" ? kind : `${kind}:${value}`;
}

/** The inverse of formatScope; undefined when the text is none of its forms. */
export function parseScope(text: string): SuppressionScope | undefined {
  if (text === "global") return { kind: "global" };
  const colon = text.indexOf(":");
  const kind = text.slice(0, colon);
  const value = text.slice(colon + 1);
  if (colon < 0 || value === "") return undefined;
  if (kind === "principal") return { kind: "principal", id: value };
  if (kind === "domain") return { kind: "domain", domain: value };
  return undefined;
}

const COLUMNS = [
  "address",
  "scope_kind",
  "scope_value",
  "reason",
  "source_event",
  "source_message_id",
  "created_at",
  "expires_at",
];

/** A later entry for the same address and scope replaces what it says, and keeps when it was first made. */
const UPSERT = `ON CONFLICT (address, scope_kind, scope_value) DO UPDATE SET
  reason = excluded.reason, source_event = excluded.source_event,
  source_message_id = excluded.source_message_id, expires_at = excluded.expires_at`;

function row(entry: NewSuppression, now: number): unknown[] {
  return [
    normalizeSuppressedAddress(entry.address),
    ...scopeColumns(entry.scope),
    entry.reason,
    entry.source?.event ?? null,
    entry.source?.messageId ?? null,
    now,
    entry.expiresAt ?? null,
  ];
}

/** The statements that add entries, for a caller that writes them in its own transaction (a hard bounce's outcome). */
export function suppressionUpsert(entries: readonly NewSuppression[], now: number): InStatement[] {
  if (entries.length === 0) return [];
  return insertRows("suppressions", COLUMNS, entries.map((e) => row(e, now)), UPSERT);
}

const SELECTED = "address, scope_kind, scope_value, reason, source_event, source_message_id, created_at, expires_at";

/**
 * The entries in force for a set of addresses (a JSON array), a principal
 * and a sending domain; one step into the primary key per address. Exported
 * for the test that reads its query plan.
 */
export const LOOKUP = `SELECT ${SELECTED} FROM suppressions
  WHERE address IN (SELECT value FROM json_each(?))
    AND (expires_at IS NULL OR expires_at > ?)
    AND (scope_kind = 'global'
         OR (scope_kind = 'principal' AND scope_value = ?)
         OR (scope_kind = 'domain' AND scope_value = ?))
  ORDER BY address`;

function entryOf(r: Record<string, unknown>): Suppression {
  const kind = String(r.scope_kind);
  const value = String(r.scope_value);
  const scope: SuppressionScope = kind === "principal"
    ? { kind: "principal", id: value }
    : kind === "domain"
    ? { kind: "domain", domain: value }
    : { kind: "global" };
  return {
    address: String(r.address),
    scope,
    reason: String(r.reason) as SuppressionReason,
    ...(r.source_event === null ? {} : {
      source: {
        event: String(r.source_event),
        ...(r.source_message_id === null ? {} : { messageId: String(r.source_message_id) }),
      },
    }),
    createdAt: Number(r.created_at),
    ...(r.expires_at === null ? {} : { expiresAt: Number(r.expires_at) }),
  };
}

export class SuppressionStore {
  constructor(private readonly database: Database, private readonly clock: Clock) {}

  /** The one entry point for adding (or renewing) an entry; other parts of the relay call it. */
  async add(entry: NewSuppression): Promise<void> {
    await this.addMany([entry]);
  }

  /** Many entries in one transaction (an import's batch). */
  async addMany(entries: readonly NewSuppression[]): Promise<void> {
    const statements = suppressionUpsert(entries, this.clock.now());
    if (statements.length > 0) await this.database.client.batch(statements, "write");
  }

  /** Remove an address's entries: of one scope, or of every scope. Returns how many were removed. */
  async remove(address: string, scope?: SuppressionScope): Promise<number> {
    const normalized = normalizeSuppressedAddress(address);
    const result = scope
      ? await this.database.client.execute({
        sql: "DELETE FROM suppressions WHERE address = ? AND scope_kind = ? AND scope_value = ?",
        args: [normalized, ...scopeColumns(scope)],
      })
      : await this.database.client.execute({ sql: "DELETE FROM suppressions WHERE address = ?", args: [normalized] });
    return result.rowsAffected;
  }

  /**
   * The entries in force that apply to a message's recipients: global ones,
   * the submitter's and its sending domain's. One query on the primary key
   * (address first), so its cost follows the recipients, not the list's
   * length. Keyed by the address as given; the first entry found for each.
   */
  async lookup(addresses: readonly string[], context: SuppressionContext): Promise<Map<string, Suppression>> {
    const found = new Map<string, Suppression>();
    if (addresses.length === 0) return found;
    const byNormal = new Map<string, string[]>();
    for (const a of addresses) {
      const n = normalizeSuppressedAddress(a);
      byNormal.set(n, [...(byNormal.get(n) ?? []), a]);
    }
    const result = await this.database.client.execute({
      sql: LOOKUP,
      args: [
        JSON.stringify([...byNormal.keys()]),
        this.clock.now(),
        context.principal ?? null,
        context.domain === undefined ? null : asciiDomain(context.domain),
      ],
    });
    for (const r of result.rows) {
      const entry = entryOf(r as unknown as Record<string, unknown>);
      for (const given of byNormal.get(entry.address) ?? []) if (!found.has(given)) found.set(given, entry);
    }
    return found;
  }

  /**
   * One page of the list in key order (address, then scope), starting after
   * `after`; `next` is the cursor of the following page, absent on the last.
   */
  async list(
    options: { readonly after?: SuppressionCursor; readonly limit: number; readonly address?: string },
  ): Promise<{ entries: Suppression[]; next?: SuppressionCursor }> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (options.after) {
      where.push("(address, scope_kind, scope_value) > (?, ?, ?)");
      args.push(...options.after);
    }
    if (options.address !== undefined) {
      where.push("address = ?");
      args.push(normalizeSuppressedAddress(options.address));
    }
    const result = await this.database.client.execute({
      sql: `SELECT ${SELECTED} FROM suppressions ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
            ORDER BY address, scope_kind, scope_value LIMIT ?`,
      args: [...args, options.limit + 1],
    });
    const rows = result.rows.slice(0, options.limit).map((r) => entryOf(r as unknown as Record<string, unknown>));
    if (result.rows.length <= options.limit) return { entries: rows };
    const last = rows[rows.length - 1]!;
    return { entries: rows, next: [last.address, ...scopeColumns(last.scope)] };
  }

  /** Every entry in key order, a page at a time: an export of millions never holds more than a page. */
  async *all(pageSize = 1000): AsyncGenerator<Suppression> {
    let after: SuppressionCursor | undefined;
    do {
      const page = await this.list({ after, limit: pageSize });
      yield* page.entries;
      after = page.next;
    } while (after);
  }
}
