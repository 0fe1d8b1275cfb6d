import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { loadConfig } from "../../src/config/load.ts";
import { configSchema } from "../../src/config/schema.ts";
import { unknownVariables } from "../../src/config/unknown-variables.ts";

// packaging/relay.env.example, shipped in every release tarball as the start of /etc/relay/relay.env.
const EXAMPLE = new URL("../../packaging/relay.env.example", import.meta.url);

/** Variables the example names without an assignment, each for a reason it gives. */
const NOT_ASSIGNED = ["RELAY_DATA_DIR"];

/** Every commented-out assignment, uncommented: what an operator gets by removing the `#`. */
function exampleAssignments(): Record<string, string> {
  const text = readFileSync(EXAMPLE, "utf8");
  return Object.fromEntries([...text.matchAll(/^#(RELAY_[A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}

test("env example: every value shown is valid for its variable", () => {
  const env = exampleAssignments();
  assert.deepEqual(unknownVariables(env), [], "only variables the relay reads");
  assert.doesNotThrow(() => loadConfig(env, "host.example"));
});

test("env example: every variable is there, each commented out so the defaults apply", () => {
  const text = readFileSync(EXAMPLE, "utf8");
  assert.doesNotMatch(text, /^\s*RELAY_/m, "nothing is set by the example itself");
  const assigned = Object.keys(exampleAssignments());
  const missing = Object.keys(configSchema.entries).filter((name) => !assigned.includes(name))
    .filter((name) => !NOT_ASSIGNED.includes(name));
  assert.deepEqual(missing, [], "each variable has a commented line with its default");
  for (const name of NOT_ASSIGNED) assert.match(text, new RegExp(`\\b${name}\\b`), `${name}: why it is not here`);
});
