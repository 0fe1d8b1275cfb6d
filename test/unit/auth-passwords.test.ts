import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DUMMY_PASSWORD_HASH, hashPassword, SCRYPT_PARAMS, verifyPassword } from "../../src/auth/passwords.ts";

describe("hashPassword / verifyPassword (scrypt)", () => {
  it("hashes into the self-describing form scrypt$N$r$p$salt$hash with a random salt", async () => {
    const a = await hashPassword("correct horse");
    const b = await hashPassword("correct horse");
    const parts = a.split("$");
    assert.equal(parts.length, 6);
    assert.deepEqual(parts.slice(0, 4), [
      "scrypt",
      String(SCRYPT_PARAMS.N),
      String(SCRYPT_PARAMS.r),
      String(SCRYPT_PARAMS.p),
    ]);
    assert.equal(Buffer.from(parts[4]!, "base64").length, 16);
    assert.equal(Buffer.from(parts[5]!, "base64").length, 32);
    assert.notEqual(a, b, "two hashes of one password differ (salt)");
  });

  it("accepts the right password and refuses a wrong one", async () => {
    const stored = await hashPassword("correct horse");
    assert.equal(await verifyPassword("correct horse", stored), true);
    assert.equal(await verifyPassword("correct horsE", stored), false);
    assert.equal(await verifyPassword("", stored), false);
  });

  it("normalizes Unicode (NFC) so the same text typed two ways matches", async () => {
    const stored = await hashPassword("caf\u00e9-caf\u00e9");
    assert.equal(await verifyPassword("cafe\u0301-cafe\u0301", stored), true);
  });

  it("refuses a tampered hash, salt or parameter", async () => {
    const stored = await hashPassword("correct horse");
    const parts = stored.split("$");
    const flip = (b64: string) => {
      const bytes = Buffer.from(b64, "base64");
      bytes[0]! ^= 1;
      return bytes.toString("base64");
    };
    const withPart = (i: number, value: string) => parts.map((p, j) => (j === i ? value : p)).join("$");
    assert.equal(await verifyPassword("correct horse", withPart(5, flip(parts[5]!))), false, "hash changed");
    assert.equal(await verifyPassword("correct horse", withPart(4, flip(parts[4]!))), false, "salt changed");
    assert.equal(await verifyPassword("correct horse", withPart(2, "4")), false, "r changed");
    assert.equal(await verifyPassword("correct horse", withPart(5, parts[5]!.slice(0, 20))), false, "hash truncated");
  });

  it("answers false, never throws, for unknown or hostile formats", async () => {
    for (
      const stored of [
        "",
        "plain-text-password",
        "bcrypt$2b$10$abcdefghijklmnopqrstuv",
        "scrypt$16384$8$1$c2FsdA==",
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", // N not a power of two
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", // N = 2^30: refused, not computed
        "scrypt$16384$8$1$!!!!$AAAA",
        "scrypt$-1$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      ]
    ) {
      assert.equal(await verifyPassword("anything", stored), false, stored);
    }
  });

  it("has a dummy hash with the current parameters that no password matches", async () => {
    assert.match(
      DUMMY_PASSWORD_HASH,
      new RegExp(`^scrypt\\$${SCRYPT_PARAMS.N}\\$${SCRYPT_PARAMS.r}\\$${SCRYPT_PARAMS.p}\\$`),
    );
    assert.equal(await verifyPassword("", DUMMY_PASSWORD_HASH), false);
    assert.equal(await verifyPassword("password", DUMMY_PASSWORD_HASH), false);
  });
});
