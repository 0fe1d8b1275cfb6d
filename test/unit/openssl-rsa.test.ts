import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { loadOpenSsl } from "../../src/platform/openssl.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const libcrypto = [
  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/usr/lib64/libcrypto.so.3",
].some(existsSync);

describe("RSA-SHA256 by the system's OpenSSL (src/platform/openssl.ts)", () => {
  it("under Bun with libcrypto.so.3 it loads, and signs exactly as node:crypto does", {
    skip: isBun && libcrypto ? undefined : "needs Bun and libcrypto.so.3",
  }, async () => {
    const openssl = await loadOpenSsl();
    assert.ok(openssl, "OpenSSL loaded");
    for (const bits of [1024, 2048, 3072]) {
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: bits });
      const signer = openssl.rsaSha256(privateKey);
      assert.ok(signer, `a signer for RSA-${bits}`);
      for (const size of [0, 1, 600, 70_000]) {
        const data = randomBytes(size);
        assert.deepEqual(
          Buffer.from(signer.sign(data)),
          sign("sha256", data, privateKey),
          `RSA-${bits}, ${size} octets`,
        );
      }
      signer.free();
    }
  });

  it("has no signer for a key that is not RSA", {
    skip: isBun && libcrypto ? undefined : "needs Bun and libcrypto.so.3",
  }, async () => {
    const openssl = await loadOpenSsl();
    assert.equal(openssl?.rsaSha256(generateKeyPairSync("ed25519").privateKey), undefined);
  });

  it(
    "elsewhere (Deno) there is none, and node:crypto signs",
    { skip: isBun ? "runs under Deno" : undefined },
    async () => {
      assert.equal(await loadOpenSsl(), undefined);
    },
  );
});
