import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseTlsRptRecord, reportDestination, selectTlsRptRecord } from "../../src/delivery/tls-report/record.ts";

const destinations = (text: string) => {
  const result = parseTlsRptRecord(text);
  assert.ok(result.ok, result.ok ? "" : result.reason);
  return result.record.destinations;
};

describe("the TLSRPT record at _smtp._tls (RFC 8460 3)", () => {
  test("mailto: and https: destinations, in order; spaces around the delimiters; a trailing ';'", () => {
    assert.deepEqual(destinations("v=TLSRPTv1;rua=mailto:reports@example.com"), [
      { kind: "mailto", uri: "mailto:reports@example.com", address: "reports@example.com" },
    ]);
    assert.deepEqual(
      destinations("v=TLSRPTv1 ;\trua=https://reporting.example.com/v1/tlsrpt , mailto:tls%2Brpt@example.com ; "),
      [
        { kind: "https", uri: "https://reporting.example.com/v1/tlsrpt" },
        { kind: "mailto", uri: "mailto:tls%2Brpt@example.com", address: "tls+rpt@example.com" },
      ],
    );
  });

  test("a mailto: with header fields still names its one mailbox (RFC 6068)", () => {
    assert.deepEqual(destinations("v=TLSRPTv1; rua=mailto:r@example.com?subject=tls"), [
      { kind: "mailto", uri: "mailto:r@example.com?subject=tls", address: "r@example.com" },
    ]);
  });

  test("well-formed unknown fields are ignored; other schemes are skipped, not fatal", () => {
    const result = parseTlsRptRecord(
      "v=TLSRPTv1; ext_1=foo/bar; rua=http://insecure.example.com/r,mailto:r@example.com; x.y=1",
    );
    assert.ok(result.ok);
    assert.deepEqual(result.record.destinations.map((d) => d.uri), ["mailto:r@example.com"]);
    assert.deepEqual(result.record.unsupported, ["http://insecure.example.com/r"]);
  });

  test("invalid records: no rua, two rua fields, a malformed field or URI, a wrong version", () => {
    for (
      const text of [
        "v=TLSRPTv1",
        "v=TLSRPTv1;",
        "v=TLSRPTv1; ext=1",
        "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com",
        "v=TLSRPTv1; rua=mailto:a@example.com; bad field",
        "v=TLSRPTv1; rua=not a uri",
        "v=TLSRPTv1; rua=",
        "v=TLSRPTv2; rua=mailto:a@example.com",
        "v=tlsrptv1; rua=mailto:a@example.com",
      ]
    ) {
      assert.equal(parseTlsRptRecord(text).ok, false, text);
    }
  });

  test("among several TXT records exactly one must begin with v=TLSRPTv1; (else the domain does not do TLSRPT)", () => {
    const one = selectTlsRptRecord(["v=spf1 -all", "v=TLSRPTv1; rua=mailto:r@example.com"]);
    assert.ok(one.ok);
    assert.equal(one.record.destinations[0]?.uri, "mailto:r@example.com");
    assert.equal(selectTlsRptRecord(["v=spf1 -all"]).ok, false);
    assert.equal(selectTlsRptRecord([]).ok, false);
    const two = selectTlsRptRecord(["v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1; rua=mailto:b@example.com"]);
    assert.ok(!two.ok && /exactly one/.test(two.reason));
    // "v=TLSRPTv1" without a ";" after it does not begin with "v=TLSRPTv1;".
    assert.equal(selectTlsRptRecord(["v=TLSRPTv1"]).ok, false);
  });

  test("a destination is a mailto: with one mailbox or an https: URL", () => {
    assert.equal(reportDestination("mailto:"), undefined);
    assert.equal(reportDestination("mailto:no-at-sign"), undefined);
    assert.equal(reportDestination("mailto:a@b.example,c@d.example"), undefined);
    assert.equal(reportDestination("ftp://example.com/r"), undefined);
    assert.deepEqual(reportDestination("HTTPS://127.0.0.1:8443/tlsrpt"), {
      kind: "https",
      uri: "HTTPS://127.0.0.1:8443/tlsrpt",
    });
  });
});
