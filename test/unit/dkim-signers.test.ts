import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { describe, it } from "node:test";
import { type DkimAlgorithm, generateDkimKey } from "../../src/auth/dkim-keys.ts";
import { type SigningKey, signMessage } from "../../src/auth/dkim-sign.ts";
import { createDkimSigner } from "../../src/auth/dkim-signers.ts";

const key = (algorithm: DkimAlgorithm, selector: string): SigningKey => ({
  domain: "sender.test",
  selector,
  algorithm,
  privateKey: createPrivateKey(generateDkimKey(algorithm).privateKeyPem),
});
const keys = [key("rsa", "r1"), key("ed25519", "e1")];
const NOW = Date.UTC(2026, 4, 18, 12);
const message = new TextEncoder().encode(
  "From: Zoë <z@sender.test>\r\nSubject: à la Рим  Π\r\nTo: t@dest.test\r\n\r\nbody  \r\n",
);

describe("where the relay signs (src/auth/dkim-signers.ts)", () => {
  // RSASSA-PKCS1-v1_5 and Ed25519 signatures are deterministic: every way of signing gives the same octets.
  it("on the worker (more than one CPU) and in this thread (one CPU), the same fields as signMessage with node:crypto", async () => {
    const expected = Buffer.from(signMessage(message, keys, NOW));
    for (const cpus of [1, 2]) {
      const signer = await createDkimSigner(cpus);
      try {
        for (let i = 0; i < 3; i++) {
          assert.deepEqual(
            Buffer.from(await signer.sign(message, keys, NOW)),
            expected,
            `${cpus} CPU(s), message ${i + 1}`,
          );
        }
      } finally {
        signer.close();
      }
    }
  });
});
