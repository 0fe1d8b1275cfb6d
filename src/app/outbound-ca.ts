import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";

/**
 * Trust anchors for outbound verification (MTA-STS policy fetches, MX
 * certificates under an enforce policy, TLS report uploads): the bundled
 * roots plus the PEM certificates in RELAY_TLS_CA_FILE; undefined (the
 * bundled roots alone) without it. Read once at start.
 */
export function outboundCa(tlsCaFile: string | undefined): string[] | undefined {
  if (tlsCaFile === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(tlsCaFile, "utf8");
  } catch (error) {
    throw new Error(`RELAY_TLS_CA_FILE: cannot read ${tlsCaFile}: ${(error as Error).message}`);
  }
  const extra = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (extra.length === 0) throw new Error(`RELAY_TLS_CA_FILE: ${tlsCaFile} holds no PEM certificate`);
  return [...rootCertificates, ...extra];
}
