import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { formatShapingError } from "../../src/shaping/load.ts";
import { loadOperatorShaping, shippedShaping } from "../../src/shaping/shipped.ts";

const SHIPPED_FILE = new URL("../../src/shaping/default-rules.yaml", import.meta.url);

describe("the shipped shaping rules", () => {
  it("load without errors: a complete default, the providers the issue names, automation and warmup", () => {
    const { rules } = shippedShaping();
    for (
      const name of ["google", "microsoft", "yahoo", "apple", "gmx-webde", "orange", "mailru", "yandex", "comcast"]
    ) {
      assert.ok(rules.providers.has(name), name);
    }
    assert.ok(rules.automation.length > 0);
    assert.equal(rules.warmup?.default.steps.length, 30, "a step a day for about a month");
  });

  it("say where each number comes from: every line that sets one carries a comment, or follows one", () => {
    const lines = readFileSync(SHIPPED_FILE, "utf8").split("\n");
    const unsourced = lines.flatMap((line, i) => {
      // A reply code in a match is no limit of ours; the warmup steps follow their comment and "steps:".
      const setsNumber = /^\s*(?!match:)[a-z_]+:\s*[\d[{]/.test(line) && /\d/.test(line.split("#")[0]!);
      const sourced = line.includes("#") || lines[i - 1]!.trim().startsWith("#") || /^\s*- \{ daily:/.test(line);
      return setsNumber && !sourced ? [`${i + 1}: ${line.trim()}`] : [];
    });
    assert.deepEqual(unsourced, []);
  });

  it("take an operator's file over them, with the operator's line numbers in errors", () => {
    const good = loadOperatorShaping("providers:\n  google:\n    message_rate: 500/h\n", "/etc/relay/shaping.yaml");
    assert.ok(good.ok, good.ok ? "" : good.errors.map(formatShapingError).join("\n"));
    assert.deepEqual(good.rules.providers.get("google")?.limits, {
      connections: 5,
      messagesPerConnection: 50,
      messageRate: { count: 500, per: "h" },
    });
    const bad = loadOperatorShaping(
      "# ours\n\ndomains:\n  example.com:\n    idle_timeout: forever\n",
      "/etc/relay/shaping.yaml",
    );
    assert.ok(!bad.ok);
    assert.deepEqual(bad.errors.map(formatShapingError), [
      '/etc/relay/shaping.yaml:5: domains."example.com".idle_timeout: expected a duration such as 30s, 5m, 2h or 1d, got "forever"',
    ]);
  });
});
