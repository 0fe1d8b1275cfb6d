import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseStsRecord, selectStsRecord } from "../../src/delivery/mta-sts/record.ts";

describe("MTA-STS TXT record (RFC 8461 3.1)", () => {
  test("parses version and id, with or without the trailing delimiter and spaces", () => {
    assert.deepEqual(parseStsRecord("v=STSv1; id=20160831085700Z;"), { ok: true, record: { id: "20160831085700Z" } });
    assert.deepEqual(parseStsRecord("v=STSv1;id=abc"), { ok: true, record: { id: "abc" } });
    assert.deepEqual(parseStsRecord("v=STSv1 ;\tid=abc ; "), { ok: true, record: { id: "abc" } });
  });

  test("well-formed extension fields are ignored", () => {
    assert.deepEqual(parseStsRecord("v=STSv1; ext_1=foo/bar; id=x9; other.name=1"), { ok: true, record: { id: "x9" } });
  });

  test("rejects a missing or malformed id and malformed fields", () => {
    for (
      const bad of [
        "v=STSv1;",
        "v=STSv1; ext=1",
        "v=STSv1; id=",
        "v=STSv1; id=has-dash",
        `v=STSv1; id=${"a".repeat(33)}`,
        "v=STSv1; id=a; id=b",
        "v=STSv1; id=a;; x=1",
        "v=STSv1; id=a; junk",
        "v=STSv1; id=a; bad=x=y",
        "v=STSv1; ID=abc",
        "v=stsv1; id=abc",
      ]
    ) {
      assert.equal(parseStsRecord(bad).ok, false, bad);
    }
  });

  test("exactly one record beginning with v=STSv1; among the TXT records", () => {
    assert.deepEqual(selectStsRecord(["v=spf1 -all", "v=STSv1; id=one"]), { ok: true, record: { id: "one" } });
    const none = selectStsRecord(["v=spf1 -all", "v=STSv10; id=x", "STSv1; id=x"]);
    assert.equal(none.ok, false);
    const two = selectStsRecord(["v=STSv1; id=one", "v=STSv1; id=two"]);
    assert.ok(!two.ok && /2 STSv1 TXT records/.test(two.reason));
    assert.equal(selectStsRecord([]).ok, false);
  });

  test("a single STSv1 record that does not parse means no policy", () => {
    const result = selectStsRecord(["v=STSv1; id=bad!"]);
    assert.ok(!result.ok && result.reason.includes("bad!"));
  });
});
