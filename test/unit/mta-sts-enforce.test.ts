import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { StsResult } from "../../src/delivery/mta-sts/discover.ts";
import { tlsRequirement } from "../../src/delivery/mta-sts/enforce.ts";
import type { Policy } from "../../src/delivery/mta-sts/policy.ts";

const policy = (mode: Policy["mode"]): Policy => ({
  version: "STSv1",
  mode,
  mx: ["mx1.example.test", "*.mail.example.test"],
  maxAge: 86_400,
});

describe("what a policy requires of an MX host (RFC 8461 4, 5)", () => {
  test("enforce: a matching MX requires verified TLS for its own name", () => {
    const sts: StsResult = { mode: "enforce", policy: policy("enforce"), id: "v1" };
    assert.deepEqual(tlsRequirement(sts, "mx1.example.test"), {
      tls: "required",
      verify: true,
      servername: "mx1.example.test",
    });
    assert.deepEqual(tlsRequirement(sts, "EU.Mail.Example.Test."), {
      tls: "required",
      verify: true,
      servername: "eu.mail.example.test",
    });
  });

  test("enforce: an MX that matches no pattern is refused, with a reason naming host, id and patterns", () => {
    const sts: StsResult = { mode: "enforce", policy: policy("enforce"), id: "v1" };
    for (const host of ["mx2.example.test", "a.b.mail.example.test", "mail.example.test"]) {
      const decision = tlsRequirement(sts, host);
      assert.ok("refuse" in decision, host);
      assert.match(decision.refuse, new RegExp(`MX host ${host.replace(/\./g, "\\.")} does not match`));
      assert.match(decision.refuse, /id v1.*mx1\.example\.test, \*\.mail\.example\.test.*RFC 8461 4\.1/);
    }
  });

  test("testing: opportunistic, the certificate checked for reporting; a mismatch is reported, not refused", () => {
    const sts: StsResult = { mode: "testing", policy: policy("testing"), id: "t" };
    assert.deepEqual(tlsRequirement(sts, "MX1.example.test."), { tls: "opportunistic", verifyAs: "mx1.example.test" });
    const mismatch = tlsRequirement(sts, "other.example.test");
    assert.ok("tls" in mismatch && mismatch.tls === "opportunistic");
    assert.match(mismatch.report ?? "", /other\.example\.test does not match.*mode testing/);
  });

  test("none: opportunistic, for any host", () => {
    assert.deepEqual(tlsRequirement({ mode: "none" }, "anything.test"), { tls: "opportunistic" });
    assert.deepEqual(tlsRequirement({ mode: "none", problem: "fetch failed" }, "mx1.example.test"), {
      tls: "opportunistic",
    });
  });
});
