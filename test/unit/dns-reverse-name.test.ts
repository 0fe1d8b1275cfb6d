import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reverseName } from "../../src/dns/reverse-name.ts";

describe("reverseName", () => {
  it("reverses IPv4 octets under in-addr.arpa (RFC 1035 3.5)", () => {
    assert.equal(reverseName("192.0.2.10"), "10.2.0.192.in-addr.arpa");
  });

  it("reverses all 32 nibbles of IPv6, however it is written, under ip6.arpa (RFC 3596 2.5)", () => {
    const expected = "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"; // RFC 3596's example
    assert.equal(reverseName("2001:db8::567:89ab"), expected);
    assert.equal(reverseName("2001:0DB8:0000:0000:0000:0000:0567:89AB"), expected);
  });

  it("is undefined for anything but an address", () => {
    assert.equal(reverseName("mail.example.com"), undefined);
  });
});
