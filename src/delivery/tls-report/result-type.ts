/**
 * RFC 8460 4.3: the result types a failed session is reported under. The
 * DANE types (4.3.2.1) are left out: the relay does not do DANE.
 */
export const TLS_RESULT_TYPES = [
  // 4.3.1 Negotiation failures
  "starttls-not-supported",
  "certificate-host-mismatch",
  "certificate-expired",
  "certificate-not-trusted",
  "validation-failure",
  // 4.3.2.2 MTA-STS-specific policy failures
  "sts-policy-fetch-error",
  "sts-policy-invalid",
  "sts-webpki-invalid",
] as const;
export type TlsResultType = (typeof TLS_RESULT_TYPES)[number];

/** OpenSSL verification codes (as node:tls reports them) that mean "no chain to a trusted root". */
const UNTRUSTED = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_NOT_TRUSTED",
]);

/**
 * A certificate verification failure by its code (RFC 8460 4.3.1): not valid
 * for the MX name, expired, or not chaining to a trusted root; anything else
 * (a bad signature, a certificate not yet valid, a revoked one) is the
 * catch-all "validation-failure" (4.3.3).
 */
export function resultTypeOfCertificate(code: string | undefined): TlsResultType {
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return "certificate-host-mismatch";
  if (code === "CERT_HAS_EXPIRED") return "certificate-expired";
  if (code !== undefined && UNTRUSTED.has(code)) return "certificate-not-trusted";
  return "validation-failure";
}

/**
 * An SMTP client failure of kind "tls". STARTTLS not offered, or refused
 * with a reply, is "starttls-not-supported"; a handshake that failed is
 * judged by its certificate code, and one that broke off without one (a
 * close or garbage after STARTTLS, a protocol error, no shared cipher) is
 * a "validation-failure" (RFC 8460 4.3.3).
 */
export function resultTypeOfTlsError(error: {
  readonly stage: string;
  readonly code?: string;
  readonly reply?: unknown;
  readonly cause?: unknown;
}): TlsResultType {
  const notOffered = error.stage === "starttls" && (error.reply !== undefined || error.cause === undefined);
  return notOffered ? "starttls-not-supported" : resultTypeOfCertificate(error.code);
}
