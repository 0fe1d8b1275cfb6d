import { parseVersioned, selectVersioned } from "../../dns/versioned-record.ts";

/**
 * The MTA-STS TXT record at `_mta-sts.<policy domain>` (RFC 8461 3.1).
 *
 *   sts-text-record  = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
 *   sts-field        = sts-id / sts-extension
 *   sts-field-delim  = *WSP ";" *WSP
 *   sts-version      = %s"v=STSv1"
 *   sts-id           = %s"id=" 1*32(ALPHA / DIGIT)
 *   sts-extension    = sts-ext-name "=" sts-ext-value   ; src/dns/versioned-record.ts
 */

export interface StsRecord {
  /** Identifies the policy version; a change tells senders to fetch the policy again (RFC 8461 3.1). */
  readonly id: string;
}

export type RecordResult = { readonly ok: true; readonly record: StsRecord } | {
  readonly ok: false;
  readonly reason: string;
};

const VERSION = "v=STSv1";
const ID = /^[A-Za-z0-9]{1,32}$/;

/**
 * Picks the policy record among all TXT records at `_mta-sts.<domain>` (each
 * already the concatenation of its strings, RFC 8461 3.1). Exactly one record
 * beginning with "v=STSv1;" must remain, and it must parse; otherwise the
 * domain has no available policy.
 */
export function selectStsRecord(txts: readonly string[]): RecordResult {
  const selected = selectVersioned(txts, VERSION, "RFC 8461 3.1");
  return selected.ok ? parseStsRecord(selected.text) : selected;
}

/** Parses one TXT record strictly by the RFC 8461 3.1 grammar; the `id` field is required. */
export function parseStsRecord(text: string): RecordResult {
  const parsed = parseVersioned(text, VERSION, ["id"]);
  if (!parsed.ok) return parsed;
  const id = parsed.fields.get("id");
  if (id === undefined) return { ok: false, reason: `record has no id field: "${text}"` };
  if (!ID.test(id)) return { ok: false, reason: `id "${id}" is not 1-32 letters and digits (RFC 8461 3.1)` };
  return { ok: true, record: { id } };
}
