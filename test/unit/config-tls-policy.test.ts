import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config/load.ts";
import { UsageError } from "../../src/core/errors.ts";

const load = (env: Record<string, string>) => loadConfig(env, "sys.example");

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    load(env);
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error.problems;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be refused`);
}

describe("TLS policy configuration: RELAY_MTA_STS, RELAY_MTA_STS_PORT, RELAY_TLS_CA_FILE", () => {
  it("defaults: MTA-STS on, policy host on 443, no extra CA", () => {
    const c = load({});
    assert.equal(c.mtaSts, true);
    assert.equal(c.mtaStsPort, 443);
    assert.equal(c.tlsCaFile, undefined);
  });

  it("reads the values", () => {
    const c = load({ RELAY_MTA_STS: "false", RELAY_MTA_STS_PORT: "8443", RELAY_TLS_CA_FILE: "/etc/relay/ca.pem" });
    assert.equal(c.mtaSts, false);
    assert.equal(c.mtaStsPort, 8443);
    assert.equal(c.tlsCaFile, "/etc/relay/ca.pem");
  });

  it("reports invalid values by name", () => {
    const problems = problemsOf({ RELAY_MTA_STS: "sometimes", RELAY_MTA_STS_PORT: "70000", RELAY_TLS_CA_FILE: "  " });
    for (const name of ["RELAY_MTA_STS", "RELAY_MTA_STS_PORT", "RELAY_TLS_CA_FILE"]) {
      assert.ok(problems.some((p) => p.startsWith(`${name}: expected `)), `${name} in ${JSON.stringify(problems)}`);
    }
  });
});

describe("TLS reporting configuration: RELAY_TLSRPT, RELAY_TLSRPT_INTERVAL, RELAY_TLSRPT_ORGANIZATION, RELAY_TLSRPT_CONTACT", () => {
  it("defaults: on, one day (RFC 8460 4.1), the host name as organization, its postmaster as contact", () => {
    const c = load({ RELAY_HOSTNAME: "mta.example.com" });
    assert.equal(c.tlsrpt, true);
    assert.equal(c.tlsrptInterval, 86_400_000);
    assert.equal(c.tlsrptOrganization, "mta.example.com");
    assert.equal(c.tlsrptContact, "postmaster@mta.example.com");
  });

  it("reads the values", () => {
    const c = load({
      RELAY_TLSRPT: "false",
      RELAY_TLSRPT_INTERVAL: "10s",
      RELAY_TLSRPT_ORGANIZATION: "Example Corp",
      RELAY_TLSRPT_CONTACT: "tls@example.com",
    });
    assert.equal(c.tlsrpt, false);
    assert.equal(c.tlsrptInterval, 10_000);
    assert.equal(c.tlsrptOrganization, "Example Corp");
    assert.equal(c.tlsrptContact, "tls@example.com");
  });

  it("reports invalid values by name: a non-boolean, a duration under a second or not one, a contact that is no address", () => {
    for (const interval of ["500ms", "0s", "daily"]) {
      assert.ok(
        problemsOf({ RELAY_TLSRPT_INTERVAL: interval }).some((p) => p.startsWith("RELAY_TLSRPT_INTERVAL: expected ")),
        interval,
      );
    }
    const problems = problemsOf({ RELAY_TLSRPT: "maybe", RELAY_TLSRPT_CONTACT: "nobody" });
    for (const name of ["RELAY_TLSRPT", "RELAY_TLSRPT_CONTACT"]) {
      assert.ok(problems.some((p) => p.startsWith(`${name}: expected `)), `${name} in ${JSON.stringify(problems)}`);
    }
  });
});
