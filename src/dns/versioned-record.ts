/**
 * The grammar MTA-STS (RFC 8461 3.1) and TLSRPT (RFC 8460 3) share for their
 * TXT records: a version, then fields, each "name=value", separated by
 * field-delim = *WSP ";" *WSP, with an optional trailing delimiter.
 * Extensions are ext-name "=" ext-value:
 *
 *   ext-name  = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *   ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
 */
import { trimWsp } from "../core/wsp.ts";

export type Selected = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly reason: string };
export type Fields = { readonly ok: true; readonly fields: ReadonlyMap<string, string> } | {
  readonly ok: false;
  readonly reason: string;
};

const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/**
 * The one record among a name's TXT records (each its strings joined) that
 * begins with `version` and a delimiter; records that do not are discarded,
 * and more than one is as good as none (`rfc` names the rule).
 */
export function selectVersioned(txts: readonly string[], version: string, rfc: string): Selected {
  const prefix = new RegExp(`^${version.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[ \\t]*;`);
  const candidates = txts.filter((t) => prefix.test(t));
  const short = version.slice("v=".length);
  if (candidates.length === 0) return { ok: false, reason: `no TXT record begins with "${version};"` };
  if (candidates.length > 1) {
    return { ok: false, reason: `${candidates.length} ${short} TXT records; exactly one is required (${rfc})` };
  }
  return { ok: true, text: candidates[0]! };
}

/**
 * The fields of one record: each name in `known` at most once, with its
 * value as written; any other field must be a well-formed extension, and is
 * ignored. At least one field must follow the version.
 */
export function parseVersioned(text: string, version: string, known: readonly string[]): Fields {
  const parts = text.split(";").map(trimWsp);
  if (parts[0] !== version) return { ok: false, reason: `record does not begin with "${version}": "${text}"` };
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  if (parts.length < 2) return { ok: false, reason: `record has no fields after the version: "${text}"` };
  const fields = new Map<string, string>();
  for (const field of parts.slice(1)) {
    const eq = field.indexOf("=");
    if (eq <= 0) return { ok: false, reason: `malformed field "${field}" in "${text}"` };
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (known.includes(name)) {
      if (fields.has(name)) return { ok: false, reason: `record has more than one ${name} field: "${text}"` };
      fields.set(name, value);
    } else if (!EXT_NAME.test(name) || !EXT_VALUE.test(value)) {
      return { ok: false, reason: `malformed extension field "${field}" in "${text}"` };
    }
  }
  return { ok: true, fields };
}
