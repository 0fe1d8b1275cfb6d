/**
 * OpenSSL signers beside the RSA keys that sign (src/platform/openssl.ts),
 * made once per key object and kept while it is in use.
 */
import type { KeyObject } from "node:crypto";
import type { OpenSsl, RsaSha256Signer } from "../platform/openssl.ts";
import type { SigningKey } from "./dkim-sign.ts";

/** OpenSSL signers for RSA keys, by key object, at most `limit` (all freed when it is reached). */
export class OpenSslKeys {
  private readonly signers = new Map<KeyObject, RsaSha256Signer | undefined>();

  constructor(
    private readonly openssl: OpenSsl | undefined,
    private readonly limit = 1000,
  ) {}

  /** `keys` with an OpenSSL signer on each RSA key it can take. */
  withSigners(keys: readonly SigningKey[]): SigningKey[] {
    if (this.openssl === undefined) return [...keys];
    return keys.map((key) => {
      if (key.algorithm !== "rsa") return key;
      const fast = this.signer(key.privateKey);
      return fast ? { ...key, rsaSha256: (data: Uint8Array) => fast.sign(data) } : key;
    });
  }

  private signer(privateKey: KeyObject): RsaSha256Signer | undefined {
    if (!this.signers.has(privateKey)) {
      if (this.signers.size >= this.limit) this.clear();
      this.signers.set(privateKey, this.openssl?.rsaSha256(privateKey));
    }
    return this.signers.get(privateKey);
  }

  clear(): void {
    for (const signer of this.signers.values()) signer?.free();
    this.signers.clear();
  }
}
