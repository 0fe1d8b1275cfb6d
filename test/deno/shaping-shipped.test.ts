// Deno: the shipped shaping rules, imported as text beside the source, load under Deno as under Bun.
import assert from "node:assert/strict";
import { test } from "node:test";
import { shippedShaping } from "../../src/shaping/shipped.ts";

test("deno: the shipped shaping rules load", () => {
  const { rules } = shippedShaping();
  assert.ok(rules.providers.has("google"));
  assert.ok(rules.automation.length > 0);
});
