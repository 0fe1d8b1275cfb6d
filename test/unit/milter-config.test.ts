import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMilters, parseScanScope } from "../../src/config/milters.ts";
import { loadConfig } from "../../src/config/load.ts";
import { UsageError } from "../../src/core/errors.ts";

describe("RELAY_MILTERS and RELAY_MILTER_SCOPE", () => {
  it("reads milters in order, each with its default action and timeouts", () => {
    const milters = parseMilters(
      "inet:127.0.0.1:11332 default=accept message_timeout=2m, unix:/run/clamav/milter.ctl command_timeout=5s,inet:[::1]:8891",
    );
    assert.deepEqual(milters, [
      {
        endpoint: { kind: "inet", host: "127.0.0.1", port: 11332 },
        name: "inet:127.0.0.1:11332",
        default: "accept",
        connectTimeoutMs: 5_000,
        commandTimeoutMs: 30_000,
        messageTimeoutMs: 120_000,
      },
      {
        endpoint: { kind: "unix", path: "/run/clamav/milter.ctl" },
        name: "unix:/run/clamav/milter.ctl",
        default: "tempfail",
        connectTimeoutMs: 5_000,
        commandTimeoutMs: 5_000,
        messageTimeoutMs: 120_000,
      },
      {
        endpoint: { kind: "inet", host: "::1", port: 8891 },
        name: "inet:[::1]:8891",
        default: "tempfail",
        connectTimeoutMs: 5_000,
        commandTimeoutMs: 30_000,
        messageTimeoutMs: 120_000,
      },
    ]);
    assert.deepEqual(parseMilters(""), []);
  });

  it("refuses what it does not understand, naming the variable", () => {
    for (
      const bad of [
        "127.0.0.1:11332",
        "inet:127.0.0.1:0",
        "inet:127.0.0.1:11332 default=discard",
        "inet:127.0.0.1:11332 timeout=5s",
        "inet:127.0.0.1:11332 command_timeout=soon",
        "inet:127.0.0.1:11332 connect_timeout=0s",
        "unix:relative/path",
      ]
    ) {
      assert.equal(parseMilters(bad), undefined, bad);
      try {
        loadConfig({ RELAY_MILTERS: bad }, "sys.example");
        assert.fail(`accepted ${bad}`);
      } catch (error) {
        assert.ok(error instanceof UsageError);
        assert.match(error.problems[0]!, /^RELAY_MILTERS: expected a comma list of inet:host:port or unix:\/path/);
      }
    }
  });

  it("scans users, keys and the relay networks by default; none turns scanning off", () => {
    assert.deepEqual(loadConfig({}, "sys.example").milterScope, ["users", "keys", "networks"]);
    assert.deepEqual(loadConfig({}, "sys.example").milters, []);
    assert.deepEqual(parseScanScope("outside,keys"), ["outside", "keys"]);
    assert.deepEqual(parseScanScope("none"), []);
    assert.equal(parseScanScope("users,admins"), undefined);
  });
});
