import { createPrivateKey, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { createSecureContext, type SecureContext } from "../platform/net.ts";
import { INBOUND_TLS } from "./policy.ts";

/** A certificate and key that belong together, ready to serve. */
export interface LoadedCertificate {
  readonly context: SecureContext;
  /** SHA-256 fingerprint of the leaf certificate, "AB:CD:...". */
  readonly fingerprint256: string;
  readonly subject: string;
  /** Validity of the leaf certificate, ms since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Whether the leaf certificate names this host (SAN or CN). */
  names(hostname: string): boolean;
}

/** Where the PEM texts came from, for error messages. */
export interface PemOrigin {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * Check and combine a PEM certificate (or chain, leaf first) and its private
 * key. Throws an Error naming the file and the problem: not PEM, not a
 * certificate, not a key, or a key that does not match the certificate.
 */
export function loadCertificate(certPem: string, keyPem: string, origin: PemOrigin): LoadedCertificate {
  if (!/-----BEGIN CERTIFICATE-----/.test(certPem)) {
    throw new Error(
      `TLS certificate ${origin.certFile}: no "-----BEGIN CERTIFICATE-----" block (expected a PEM certificate)`,
    );
  }
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (error) {
    throw new Error(`TLS certificate ${origin.certFile}: cannot parse the PEM certificate (${reason(error)})`);
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) {
    throw new Error(
      `TLS key ${origin.keyFile}: no "-----BEGIN ... PRIVATE KEY-----" block (expected a PEM private key)`,
    );
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw new Error(`TLS key ${origin.keyFile}: cannot parse the PEM private key (${reason(error)})`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new Error(`TLS key ${origin.keyFile} does not match the certificate in ${origin.certFile}`);
  }
  let context: SecureContext;
  try {
    context = createSecureContext({ cert: certPem, key: keyPem, ...INBOUND_TLS });
  } catch (error) {
    throw new Error(`TLS certificate ${origin.certFile} with key ${origin.keyFile}: ${reason(error)}`);
  }
  return {
    context,
    fingerprint256: certificate.fingerprint256,
    subject: certificate.subject,
    notBefore: Date.parse(certificate.validFrom),
    notAfter: Date.parse(certificate.validTo),
    names: (hostname) =>
      (isIP(hostname) !== 0 ? certificate.checkIP(hostname) : certificate.checkHost(hostname)) !== undefined,
  };
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
