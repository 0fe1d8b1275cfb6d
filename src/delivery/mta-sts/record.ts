/**
 * The MTA-STS TXT record at `_mta-sts.<policy domain>` (RFC 8461 3.1).
 *
 *   sts-text-record  = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
 *   sts-field        = sts-id / sts-extension
 *   sts-field-delim  = *WSP ";" *WSP
 *   sts-version      = %s"v=STSv1"
 *   sts-id           = %s"id=" 1*32(ALPHA / DIGIT)
 *   sts-extension    = sts-ext-name "=" sts-ext-value
 *   sts-ext-name     = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *   sts-ext-value    = 1*(%x21-3A / %x3C / %x3E-7E)
 */

export interface StsRecord {
  /** Identifies the policy version; a change tells senders to fetch the policy again (RFC 8461 3.1). */
  readonly id: string;
}

export type RecordResult = { readonly ok: true; readonly record: StsRecord } | { readonly ok: false; readonly reason: string };

const VERSION = "v=STSv1";
/** RFC 8461 3.1: records that do not begin with "v=STSv1;" are discarded (WSP before ";" is allowed by sts-field-delim). */
const STS_PREFIX = /^v=STSv1[ \t]*;/;
const ID = /^[A-Za-z0-9]{1,32}$/;
const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/**
 * Picks the policy record among all TXT records at `_mta-sts.<domain>` (each
 * already the concatenation of its strings, RFC 8461 3.1). Exactly one record
 * beginning with "v=STSv1;" must remain, and it must parse; otherwise the
 * domain has no available policy.
 */
export function selectStsRecord(txts: readonly string[]): RecordResult {
  const candidates = txts.filter((t) => STS_PREFIX.test(t));
  if (candidates.length === 0) return { ok: false, reason: "no TXT record begins with \"v=STSv1;\"" };
  if (candidates.length > 1) return { ok: false, reason: `${candidates.length} STSv1 TXT records; exactly one is required (RFC 8461 3.1)` };
  return parseStsRecord(candidates[0]!);
}

/** Parses one TXT record strictly by the RFC 8461 3.1 grammar; the `id` field is required. */
export function parseStsRecord(text: string): RecordResult {
  const fields = text.split(";").map((f) => f.replace(/^[ \t]+|[ \t]+$/g, ""));
  if (fields[0] !== VERSION) return { ok: false, reason: `record does not begin with "${VERSION}": "${text}"` };
  if (fields.length > 1 && fields[fields.length - 1] === "") fields.pop(); // the optional trailing delimiter
  if (fields.length < 2) return { ok: false, reason: `record has no fields after the version: "${text}"` };
  let id: string | undefined;
  for (const field of fields.slice(1)) {
    const eq = field.indexOf("=");
    if (eq <= 0) return { ok: false, reason: `malformed field "${field}" in "${text}"` };
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (name === "id") {
      if (!ID.test(value)) return { ok: false, reason: `id "${value}" is not 1-32 letters and digits (RFC 8461 3.1)` };
      if (id !== undefined) return { ok: false, reason: `record has more than one id: "${text}"` };
      id = value;
    } else if (!EXT_NAME.test(name) || !EXT_VALUE.test(value)) {
      return { ok: false, reason: `malformed extension field "${field}" in "${text}"` };
    }
    // Well-formed extensions are ignored.
  }
  if (id === undefined) return { ok: false, reason: `record has no id field: "${text}"` };
  return { ok: true, record: { id } };
}
