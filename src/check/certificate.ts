import { readFileSync } from "node:fs";
import { loadCertificate } from "../tls/load.ts";
import { type CheckResult, errorReason, fail, pass, warn } from "./result.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
/** Renewal (certbot, acme.sh) runs 30 days ahead; under this many days, it has been failing. */
const RENEW_WARNING_DAYS = 14;

export interface CertificateFiles {
  readonly certFile?: string;
  readonly keyFile?: string;
}

/**
 * The certificate the SMTP listeners will offer: its files readable, the
 * key matching it (src/tls/load.ts, as serve loads it), valid now and not
 * about to expire, and naming RELAY_HOSTNAME, which submission clients verify.
 */
export function checkCertificate(files: CertificateFiles, hostname: string, now: number): CheckResult {
  if (files.certFile === undefined || files.keyFile === undefined) {
    return warn(
      "RELAY_TLS_CERT_FILE",
      "not set: serve uses a self-signed certificate, which clients that verify certificates refuse",
      `set RELAY_TLS_CERT_FILE and RELAY_TLS_KEY_FILE to a certificate for ${hostname} (Let's Encrypt)`,
    );
  }
  const what = `RELAY_TLS_CERT_FILE ${files.certFile}`;
  const read = (path: string) => readFileSync(path, "utf8");
  let certPem: string;
  let keyPem: string;
  try {
    certPem = read(files.certFile);
  } catch (error) {
    return fail(what, `cannot read it (${errorReason(error)})`, "make it a file readable by the relay's user");
  }
  try {
    keyPem = read(files.keyFile);
  } catch (error) {
    return fail(
      `RELAY_TLS_KEY_FILE ${files.keyFile}`,
      `cannot read it (${errorReason(error)})`,
      "make it a file readable by the relay's user",
    );
  }
  let certificate: ReturnType<typeof loadCertificate>;
  try {
    certificate = loadCertificate(certPem, keyPem, files as Required<CertificateFiles>);
  } catch (error) {
    return fail(what, (error as Error).message, "give the certificate and the private key made with it");
  }
  const renew = "renew the certificate";
  const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  if (certificate.notAfter < now) return fail(what, `expired on ${date(certificate.notAfter)}`, renew);
  if (certificate.notBefore > now) {
    return fail(what, `not valid before ${date(certificate.notBefore)}`, "check the clock, or the certificate's dates");
  }
  const days = Math.floor((certificate.notAfter - now) / DAY_MS);
  const validity = `valid until ${date(certificate.notAfter)} (${days} days)`;
  if (!certificate.names(hostname)) {
    return warn(
      what,
      `${certificate.subject.replaceAll("\n", ", ")}, ${validity}, does not name RELAY_HOSTNAME ${hostname}`,
      `use a certificate for ${hostname}`,
    );
  }
  if (days < RENEW_WARNING_DAYS) return warn(what, `expires in ${days} days (${date(certificate.notAfter)})`, renew);
  return pass(what, `names ${hostname}, key matches, ${validity}`);
}
