/**
 * What a DNS recheck of a sending domain changed: each record that passed
 * in the last check and now fails or warns (changed, or gone from DNS), or
 * that failed or warned and now passes. One `domain_changed` event each.
 *
 * Records are matched by purpose, name and DKIM selector. A record only in
 * one of the two checks is no change of DNS (a key added, or retired and no
 * longer required), so it raises nothing; nor does the first check of a
 * domain (there is no "before").
 */
import type { CheckStatus, DomainCheckReport, RecordCheck } from "./domain-check.ts";

/** The `data` of a `domain_changed` event. */
export interface DomainChange {
  readonly domain: string;
  /** The record's purpose: spf, dkim, dmarc, return-path-mx, return-path-spf, mta-sts, tls-rpt. */
  readonly record: RecordCheck["purpose"];
  /** Where it lives in DNS. */
  readonly name: string;
  readonly before: CheckStatus;
  readonly after: CheckStatus;
  /** What to change now; null when it passes again. */
  readonly fix: string | null;
  /** The check's explanation and what DNS holds now. */
  readonly detail: string;
  readonly found: readonly string[];
  readonly required: boolean;
  readonly selector?: string;
  readonly algorithm?: string;
}

const identity = (r: Pick<RecordCheck, "purpose" | "name" | "selector">) =>
  `${r.purpose}\u0000${r.name}\u0000${r.selector ?? ""}`;

function isRecordCheck(value: unknown): value is RecordCheck {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  return typeof r.purpose === "string" && typeof r.name === "string" &&
    (r.status === "pass" || r.status === "fail" || r.status === "warn");
}

/** The changes across "pass" between the last stored check (any shape: it comes from the database) and this one. */
export function domainChanges(before: unknown, after: DomainCheckReport): DomainChange[] {
  const records = (before as { records?: unknown } | null | undefined)?.records;
  if (!Array.isArray(records)) return [];
  const previous = new Map<string, RecordCheck>();
  for (const r of records) if (isRecordCheck(r)) previous.set(identity(r), r);
  const changes: DomainChange[] = [];
  for (const now of after.records) {
    const was = previous.get(identity(now));
    if (!was || (was.status === "pass") === (now.status === "pass")) continue;
    changes.push({
      domain: after.domain,
      record: now.purpose,
      name: now.name,
      before: was.status,
      after: now.status,
      fix: now.status === "pass" ? null : (now.fix ?? null),
      detail: now.detail,
      found: now.found,
      required: now.required,
      ...(now.selector === undefined ? {} : { selector: now.selector }),
      ...(now.algorithm === undefined ? {} : { algorithm: now.algorithm }),
    });
  }
  return changes;
}
