import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { shapingInForce } from "../../src/app/shaping-file.ts";
import { ShapingSettings } from "../../src/app/shaping-settings.ts";
import { loadConfig } from "../../src/config/load.ts";
import type { Logger } from "../../src/core/log.ts";
import { SettingsStore } from "../../src/queue/settings.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";

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

describe("shaping rules given while the relay runs (PUT /v1/shaping)", () => {
  const dir = mkdtempSync(join(tmpdir(), "relay-shaping-settings-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const temporaryDatabase = temporaryDatabases("relay-shaping-settings-");
  const file = join(dir, "shaping.yaml");
  writeFileSync(file, "domains:\n  example.com:\n    connections: 1\n");
  const config = loadConfig({ RELAY_SHAPING_FILE: file, RELAY_DESTINATION_IDLE_TIMEOUT: "3s" }, "relay.test");

  async function store() {
    return new SettingsStore((await temporaryDatabase(0)).database);
  }
  const open = async (s: SettingsStore, log: Logger = () => undefined) =>
    ShapingSettings.open(config, shapingInForce(config), s, new FakeClock(), log);

  it("a body with a problem changes nothing: each problem with its line and field", async () => {
    const settings = await open(await store());
    let changes = 0;
    settings.onChange(() => changes++);
    const result = await settings.put("default:\n  connections: 2\ndomains:\n  example.com:\n    connections: none\n");
    assert.deepEqual(result, {
      ok: false,
      errors: [{
        file: "PUT /v1/shaping",
        line: 5,
        path: 'domains."example.com".connections',
        message: 'expected a whole number of at least 1, got "none"',
      }],
    });
    assert.equal(settings.current().origin.kind, "file");
    assert.equal(settings.current().rules.default.connections, 20);
    assert.equal(changes, 0);
  });

  it("a valid body replaces the file's layer at once, the variables still over its default, and outlives a restart", async () => {
    const s = await store();
    const settings = await open(s);
    let changes = 0;
    settings.onChange(() => changes++);
    const text = "default:\n  connections: 2\n";
    assert.deepEqual(await settings.put(text), { ok: true });
    assert.equal(changes, 1);
    const { rules, origin, document } = settings.current();
    assert.equal(rules.default.connections, 2);
    assert.equal(rules.default.idleTimeout, 3000, "RELAY_DESTINATION_IDLE_TIMEOUT stays over the default");
    assert.equal(rules.domains.get("example.com"), undefined, "the file's rule is not applied any more");
    assert.deepEqual(origin, { kind: "api", text, at: new FakeClock().now() });
    assert.equal((document.default as Record<string, unknown>).connections, 2);

    const warnings: string[] = [];
    const restarted = await open(s, (level, message) => warnings.push(`${level}: ${message}`));
    assert.equal(restarted.current().rules.default.connections, 2);
    assert.equal(restarted.current().origin.kind, "api");
    assert.deepEqual(warnings, [
      "warn: RELAY_SHAPING_FILE is not applied: the rules given through PUT /v1/shaping are",
    ]);

    await restarted.reset();
    assert.equal(restarted.current().origin.kind, "file");
    assert.deepEqual(restarted.current().rules.domains.get("example.com"), { connections: 1 });
    assert.equal((await open(s)).current().origin.kind, "file", "forgotten for good");
  });

  it("stored rules this version no longer accepts are logged and not applied", async () => {
    const s = await store();
    await s.setSetting("shaping_rules", JSON.stringify({ text: "default:\n  speed: 3\n", at: 0 }));
    const logged: string[] = [];
    const settings = await open(s, (level, message, fields) => logged.push(`${level}: ${message}: ${fields?.errors}`));
    assert.equal(settings.current().origin.kind, "file");
    assert.equal(logged.length, 1);
    assert.match(
      logged[0]!,
      /^error: .* no longer valid; they are not applied: PUT \/v1\/shaping:2: default\.speed: unknown field/,
    );
  });
});
