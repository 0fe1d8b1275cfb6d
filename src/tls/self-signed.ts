import { chmod, mkdir, rename, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { generate } from "selfsigned";

export const SELF_SIGNED_VALIDITY_MS = 365 * 24 * 60 * 60 * 1000;

/** Where the generated certificate lives: `<dataDir>/tls/cert.pem` and `key.pem`. */
export function selfSignedPaths(dataDir: string): { dir: string; certFile: string; keyFile: string } {
  const dir = join(dataDir, "tls");
  return { dir, certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") };
}

/**
 * A self-signed RSA-2048 / SHA-256 server certificate for `hostname` (CN and
 * SAN), valid for one year from `now`.
 */
export async function generateSelfSigned(hostname: string, now: number): Promise<{ cert: string; key: string }> {
  const altName = isIP(hostname) !== 0 ? { type: 7 as const, ip: hostname } : { type: 2 as const, value: hostname };
  const pems = await generate([{ name: "commonName", value: hostname }], {
    keyType: "rsa",
    keySize: 2048,
    algorithm: "sha256",
    notBeforeDate: new Date(now),
    notAfterDate: new Date(now + SELF_SIGNED_VALIDITY_MS),
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [altName] },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * Write the pair: each file through a temporary name and a rename, both
 * with mode 0600 (every file of the data directory is private) in a 0700
 * directory. The key goes first; a crash between the two renames leaves a
 * mismatched pair, which the next start regenerates.
 */
export async function writeSelfSigned(dataDir: string, pems: { cert: string; key: string }): Promise<void> {
  const { dir, certFile, keyFile } = selfSignedPaths(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keyTemp = `${keyFile}.tmp`;
  await writeFile(keyTemp, pems.key, { mode: 0o600 });
  await chmod(keyTemp, 0o600); // in case a stale temporary file had other bits
  await rename(keyTemp, keyFile);
  const certTemp = `${certFile}.tmp`;
  await writeFile(certTemp, pems.cert, { mode: 0o600 });
  await chmod(certTemp, 0o600);
  await rename(certTemp, certFile);
}
