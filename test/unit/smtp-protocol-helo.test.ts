import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isValidHeloName } from "../../src/smtp/protocol/helo-name.ts";

describe("EHLO/HELO argument syntax (RFC 5321 4.1.1.1)", () => {
  it("accepts domains, address literals, a trailing dot and underscores", () => {
    for (
      const name of [
        "mail.example.com",
        "localhost",
        "client.test",
        "[127.0.0.1]",
        "[IPv6:::1]",
        "[IPv6:2001:db8::25]",
        "host.example.",
        "win_host.corp.example",
        "a",
      ]
    ) {
      assert.equal(isValidHeloName(name), true, name);
    }
  });

  it("refuses what is not a name", () => {
    for (
      const name of [
        "",
        "-bad-",
        "bad-.example",
        "a..b",
        ".lead",
        "[999.1.1.1]",
        "[1.2.3]",
        "[IPv6:zz::1]",
        "[127.0.0.1",
        "two words",
        "a".repeat(64) + ".example",
        "exa$mple.com",
      ]
    ) {
      assert.equal(isValidHeloName(name), false, name);
    }
  });
});
