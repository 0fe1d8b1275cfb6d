/**
 * Where the relay signs: on the signing worker when the process may run on
 * more than one CPU (RSA then runs beside the SMTP sessions), else in this
 * thread: a worker on the same CPU only adds the hand-over (about 0.13 ms a
 * message measured, a quarter of signing with both keys). Both sign RSA with
 * OpenSSL where it loads (src/platform/openssl.ts).
 */
import { loadOpenSsl } from "../platform/openssl.ts";
import { DkimSignerWorker } from "./dkim-signer-worker.ts";
import { type SigningKey, signMessage } from "./dkim-sign.ts";
import { OpenSslKeys } from "./openssl-keys.ts";

export interface DkimSigner {
  sign(message: Uint8Array, keys: readonly SigningKey[], now: number): Promise<Uint8Array>;
  close(): void;
}

export async function createDkimSigner(cpus: number): Promise<DkimSigner> {
  if (cpus > 1) {
    const worker = new DkimSignerWorker();
    return { sign: (message, keys, now) => worker.sign(message, keys, now), close: () => worker.close() };
  }
  const openssl = new OpenSslKeys(await loadOpenSsl());
  return {
    sign: async (message, keys, now) => signMessage(message, openssl.withSigners(keys), now),
    close: () => openssl.clear(),
  };
}
