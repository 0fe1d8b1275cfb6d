/**
 * RSA-SHA256 signatures (RSASSA-PKCS1-v1_5, RFC 8017 8.2) by the system's
 * OpenSSL 3 (libcrypto.so.3) through Bun's FFI. Bun's node:crypto is
 * BoringSSL, whose RSA-2048 private-key operation costs about twice what
 * OpenSSL's does on the same core (0.55 vs 0.27 ms measured here), and RSA is
 * most of the cost of DKIM signing. PKCS#1 v1.5 signatures are deterministic:
 * each key is checked once against node:crypto's signature of the same
 * digest, and used only when they are the same octets.
 *
 * Where the library cannot be loaded (Deno, a system without libcrypto.so.3)
 * there is no OpenSSL signer and node:crypto signs.
 */
import { createHash, type KeyObject, sign } from "node:crypto";

/** Signs with one RSA private key; free() releases it (the signer is unusable after). */
export interface RsaSha256Signer {
  sign(data: Uint8Array): Uint8Array;
  free(): void;
}

export interface OpenSsl {
  /** A signer for `key` (an RSA private key), or undefined when OpenSSL cannot take it. */
  rsaSha256(key: KeyObject): RsaSha256Signer | undefined;
}

const RSA_PKCS1_PADDING = 1;

/** The symbols used, as bun:ffi declares them. */
const SYMBOLS = {
  BIO_new_mem_buf: { args: ["ptr", "i32"], returns: "ptr" },
  BIO_free: { args: ["ptr"], returns: "i32" },
  d2i_PrivateKey_bio: { args: ["ptr", "ptr"], returns: "ptr" },
  EVP_PKEY_free: { args: ["ptr"], returns: "void" },
  EVP_PKEY_CTX_new: { args: ["ptr", "ptr"], returns: "ptr" },
  EVP_PKEY_CTX_free: { args: ["ptr"], returns: "void" },
  EVP_PKEY_sign_init: { args: ["ptr"], returns: "i32" },
  EVP_PKEY_CTX_set_rsa_padding: { args: ["ptr", "i32"], returns: "i32" },
  EVP_PKEY_CTX_set_signature_md: { args: ["ptr", "ptr"], returns: "i32" },
  EVP_PKEY_sign: { args: ["ptr", "ptr", "ptr", "ptr", "u64"], returns: "i32" },
  EVP_sha256: { args: [], returns: "ptr" },
} as const;

/** OpenSSL when it can be loaded here, else undefined. */
export async function loadOpenSsl(): Promise<OpenSsl | undefined> {
  if (typeof (globalThis as { Bun?: unknown }).Bun === "undefined") return undefined;
  try {
    const ffi = await import("bun:ffi");
    const lib = ffi.dlopen("libcrypto.so.3", SYMBOLS);
    return { rsaSha256: (key) => rsaSigner(ffi.ptr, lib.symbols, key) };
  } catch {
    return undefined;
  }
}

// deno-lint-ignore no-explicit-any -- FFI symbols take and return what their C signatures say
type Symbols = { [K in keyof typeof SYMBOLS]: (...args: any[]) => any };
type Pointer = import("bun:ffi").Pointer | null;

function rsaSigner(ptr: typeof import("bun:ffi").ptr, lib: Symbols, key: KeyObject): RsaSha256Signer | undefined {
  if (key.asymmetricKeyType !== "rsa") return undefined;
  const der = key.export({ type: "pkcs8", format: "der" });
  const bio: Pointer = lib.BIO_new_mem_buf(ptr(der), der.length);
  if (!bio) return undefined;
  const pkey: Pointer = lib.d2i_PrivateKey_bio(bio, null);
  lib.BIO_free(bio);
  if (!pkey) return undefined;
  const ctx: Pointer = lib.EVP_PKEY_CTX_new(pkey, null);
  const ready = ctx !== null &&
    lib.EVP_PKEY_sign_init(ctx) === 1 &&
    lib.EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) === 1 &&
    lib.EVP_PKEY_CTX_set_signature_md(ctx, lib.EVP_sha256()) === 1;
  const free = () => {
    if (ctx) lib.EVP_PKEY_CTX_free(ctx);
    lib.EVP_PKEY_free(pkey);
  };
  if (!ready) {
    free();
    return undefined;
  }
  const size = (key.asymmetricKeyDetails?.modulusLength ?? 4096) / 8;
  const out = new Uint8Array(size);
  const length = new BigUint64Array(1);
  const signer: RsaSha256Signer = {
    sign(data) {
      const digest = createHash("sha256").update(data).digest();
      length[0] = BigInt(size);
      if (lib.EVP_PKEY_sign(ctx, ptr(out), ptr(length), ptr(digest), digest.length) !== 1) {
        throw new Error("OpenSSL could not sign with the RSA key");
      }
      return out.slice(0, Number(length[0]));
    },
    free,
  };
  // Used only when it signs exactly as node:crypto does.
  const probe = new TextEncoder().encode("relay: RSA-SHA256 probe");
  if (!Buffer.from(signer.sign(probe)).equals(sign("sha256", probe, key))) {
    free();
    return undefined;
  }
  return signer;
}
