import { trimWsp } from "../../core/wsp.ts";
import { parseVersioned, selectVersioned } from "../../dns/versioned-record.ts";

/**
 * The TLSRPT record at `_smtp._tls.<policy domain>` (RFC 8460 3):
 *
 *   tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
 *   field-delim      = *WSP ";" *WSP
 *   tlsrpt-field     = tlsrpt-rua / tlsrpt-extension   ; the rua field is required
 *   tlsrpt-version   = %s"v=TLSRPTv1"
 *   tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
 *   tlsrpt-uri       = URI   ; "," and "!" must be percent-encoded
 *   tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value   ; src/dns/versioned-record.ts
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

export type TlsRptRecordResult = { readonly ok: true; readonly record: TlsRptRecord } | {
  readonly ok: false;
  readonly reason: string;
};

const VERSION = "v=TLSRPTv1";
/** RFC 3986 URI: a scheme, then characters a URI may hold. */
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+;=%]+$/;
const MAILBOX = /^[^\s@<>()",;:\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/**
 * The one TLSRPT record among the TXT records at `_smtp._tls.<domain>` (each
 * already its strings joined, RFC 8460 3). Unless exactly one begins with
 * "v=TLSRPTv1;", the domain "does not implement TLSRPT" (RFC 8460 3).
 */
export function selectTlsRptRecord(txts: readonly string[]): TlsRptRecordResult {
  const selected = selectVersioned(txts, VERSION, "RFC 8460 3");
  return selected.ok ? parseTlsRptRecord(selected.text) : selected;
}

/** Parses one record by the RFC 8460 3 grammar; unknown well-formed fields are ignored, rua is required. */
export function parseTlsRptRecord(text: string): TlsRptRecordResult {
  const parsed = parseVersioned(text, VERSION, ["rua"]);
  if (!parsed.ok) return parsed;
  const rua = parsed.fields.get("rua");
  if (rua === undefined) return { ok: false, reason: `record has no rua field: "${text}"` };
  const uris = rua.split(",").map(trimWsp);
  const bad = uris.find((u) => !URI.test(u));
  if (bad !== undefined) return { ok: false, reason: `rua "${bad}" is not a URI` };
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
