/**
 * The TLSRPT record at `_smtp._tls.<policy domain>` (RFC 8460 3):
 *
 *   tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
 *   field-delim      = *WSP ";" *WSP
 *   tlsrpt-field     = tlsrpt-rua / tlsrpt-extension   ; the rua field is required
 *   tlsrpt-version   = %s"v=TLSRPTv1"
 *   tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
 *   tlsrpt-uri       = URI   ; "," and "!" must be percent-encoded
 *   tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
 *   tlsrpt-ext-name  = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *   tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
 */

/** Where a report goes: a mailbox (mailto:) or an HTTPS endpoint to POST to. */
export type ReportDestination =
  | { readonly kind: "mailto"; readonly uri: string; readonly address: string }
  | { readonly kind: "https"; readonly uri: string };

export interface TlsRptRecord {
  /** The supported destinations, in the record's order. */
  readonly destinations: readonly ReportDestination[];
  /** URIs of schemes other than mailto and https, which are skipped. */
  readonly unsupported: readonly string[];
}

export type TlsRptRecordResult = { readonly ok: true; readonly record: TlsRptRecord } | { readonly ok: false; readonly reason: string };

const VERSION = "v=TLSRPTv1";
/** Records that do not begin with "v=TLSRPTv1;" are discarded (RFC 8460 3); WSP before ";" is a field-delim. */
const TLSRPT_PREFIX = /^v=TLSRPTv1[ \t]*;/;
const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;
/** RFC 3986 URI: a scheme, then characters a URI may hold. */
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+;=%]+$/;
const MAILBOX = /^[^\s@<>()",;:\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/**
 * The one TLSRPT record among the TXT records at `_smtp._tls.<domain>` (each
 * already its strings joined, RFC 8460 3). Unless exactly one begins with
 * "v=TLSRPTv1;", the domain "does not implement TLSRPT" (RFC 8460 3).
 */
export function selectTlsRptRecord(txts: readonly string[]): TlsRptRecordResult {
  const candidates = txts.filter((t) => TLSRPT_PREFIX.test(t));
  if (candidates.length === 0) return { ok: false, reason: 'no TXT record begins with "v=TLSRPTv1;"' };
  if (candidates.length > 1) return { ok: false, reason: `${candidates.length} TLSRPTv1 TXT records; exactly one is required (RFC 8460 3)` };
  return parseTlsRptRecord(candidates[0]!);
}

/** Parses one record by the RFC 8460 3 grammar; unknown well-formed fields are ignored, rua is required. */
export function parseTlsRptRecord(text: string): TlsRptRecordResult {
  const fields = text.split(";").map((f) => f.replace(/^[ \t]+|[ \t]+$/g, ""));
  if (fields[0] !== VERSION) return { ok: false, reason: `record does not begin with "${VERSION}": "${text}"` };
  if (fields.length > 1 && fields[fields.length - 1] === "") fields.pop(); // the optional trailing delimiter
  let uris: string[] | undefined;
  for (const field of fields.slice(1)) {
    const eq = field.indexOf("=");
    if (eq <= 0) return { ok: false, reason: `malformed field "${field}" in "${text}"` };
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (name === "rua") {
      if (uris !== undefined) return { ok: false, reason: `record has more than one rua field: "${text}"` };
      uris = value.split(",").map((u) => u.replace(/^[ \t]+|[ \t]+$/g, ""));
      const bad = uris.find((u) => !URI.test(u));
      if (bad !== undefined) return { ok: false, reason: `rua "${bad}" is not a URI` };
    } else if (!EXT_NAME.test(name) || !EXT_VALUE.test(value)) {
      return { ok: false, reason: `malformed extension field "${field}" in "${text}"` };
    }
  }
  if (uris === undefined) return { ok: false, reason: `record has no rua field: "${text}"` };
  const destinations: ReportDestination[] = [];
  const unsupported: string[] = [];
  for (const uri of uris) {
    const destination = reportDestination(uri);
    if (destination) destinations.push(destination);
    else unsupported.push(uri);
  }
  return { ok: true, record: { destinations, unsupported } };
}

/** "mailto" and "https" are the two schemes RFC 8460 3 defines; anything else, or a mailto: without one mailbox, is none. */
export function reportDestination(uri: string): ReportDestination | undefined {
  const colon = uri.indexOf(":");
  const scheme = uri.slice(0, colon).toLowerCase();
  if (scheme === "https") {
    try {
      new URL(uri);
      return { kind: "https", uri };
    } catch {
      return undefined;
    }
  }
  if (scheme !== "mailto") return undefined;
  // RFC 6068: mailto:addr-spec[?hfields]; commas are percent-encoded here (RFC 8460 3), so one mailbox.
  const target = uri.slice(colon + 1).split("?")[0]!;
  let address: string;
  try {
    address = decodeURIComponent(target);
  } catch {
    return undefined;
  }
  return MAILBOX.test(address) ? { kind: "mailto", uri, address } : undefined;
}
