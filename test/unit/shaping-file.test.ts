import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { shapingInForce } from "../../src/app/shaping-file.ts";
import { loadConfig } from "../../src/config/load.ts";

describe("the shaping rules in force", () => {
  const dir = mkdtempSync(join(tmpdir(), "relay-shaping-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "shaping.yaml");
  writeFileSync(
    file,
    "default:\n  connections: 10\n  idle_timeout: 5s\ndomains:\n  example.com:\n    connections: 1\n",
  );

  it("the file over the shipped rules, the variables over the file's default level", () => {
    const { rules, document } = shapingInForce(
      loadConfig({ RELAY_SHAPING_FILE: file, RELAY_DESTINATION_MAX_CONNECTIONS: "4" }, "relay.test"),
    );
    assert.equal(rules.default.connections, 4);
    assert.equal(rules.default.idleTimeout, 5000);
    assert.deepEqual(rules.domains.get("example.com"), { connections: 1 });
    const shown = document.default as Record<string, unknown>;
    assert.equal(shown.connections, 4);
    assert.equal(shown.idle_timeout, "5s");
  });

  it("a variable's duration is shown in the file's form", () => {
    const { document } = shapingInForce(loadConfig({ RELAY_DESTINATION_IDLE_TIMEOUT: "1500ms" }, "relay.test"));
    assert.equal((document.default as Record<string, unknown>).idle_timeout, "1500ms");
  });

  it("RELAY_RETRY_SCHEDULE is the default level's retry, over the file's; a provider's own stays", () => {
    const retryFile = join(dir, "retry.yaml");
    writeFileSync(
      retryFile,
      "default:\n  retry: [2m, 1h]\nproviders:\n  acme:\n    mx_suffixes: [acme.test]\n    retry: [45m]\n",
    );
    const fromFile = shapingInForce(loadConfig({ RELAY_SHAPING_FILE: retryFile }, "relay.test"));
    assert.deepEqual(fromFile.rules.default.retrySchedule, [120_000, 3_600_000]);
    const { rules, document } = shapingInForce(
      loadConfig({ RELAY_SHAPING_FILE: retryFile, RELAY_RETRY_SCHEDULE: "30s,90s" }, "relay.test"),
    );
    assert.deepEqual(rules.default.retrySchedule, [30_000, 90_000]);
    assert.deepEqual(rules.providers.get("acme")!.limits.retrySchedule, [45 * 60_000]);
    assert.deepEqual((document.default as Record<string, unknown>).retry, ["30s", "90s"]);
  });

  it("an operator's file may set retry at every level", () => {
    const retryFile = join(dir, "levels.yaml");
    writeFileSync(
      retryFile,
      "domains:\n  example.com:\n    retry: [10m]\nsource_ips:\n  192.0.2.10:\n    retry: [1m, 2m]\n",
    );
    const { rules } = shapingInForce(loadConfig({ RELAY_SHAPING_FILE: retryFile }, "relay.test"));
    assert.deepEqual(rules.domains.get("example.com"), { retrySchedule: [600_000] });
    assert.deepEqual(rules.sourceIps.get("192.0.2.10"), { retrySchedule: [60_000, 120_000] });
  });
});
