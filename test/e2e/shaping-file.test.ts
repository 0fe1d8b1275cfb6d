/**
 * RELAY_SHAPING_FILE: an operator's rules over the shipped ones. A domain
 * rule binds delivery to that domain (counted at the receiver: sessions at
 * once), GET /v1/shaping shows it to the admin only, GET /v1/warmup that
 * warmup is off, and a file with a bad value stops `relay serve` with exit 2
 * naming the file, the line and the field.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { shippedShaping } from "../../src/shaping/shipped.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { startWorld, type World } from "../helpers/world.ts";

const dir = mkdtempSync(join(tmpdir(), "relay-shaping-file-"));
function shapingFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const DOMAIN_RULE = `# the operator's rules
domains:
  dest.test:
    connections: 2
`;

describe("RELAY_SHAPING_FILE", () => {
  let w: World | undefined;
  after(async () => {
    await w?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a domain rule limits the connections to that domain", async () => {
    assert.ok(shippedShaping().rules.default.connections > 2, "the shipped default allows more");
    w = await startWorld({
      env: { RELAY_BOUNCE_DOMAIN: "bounces.sender.test", RELAY_SHAPING_FILE: shapingFile("ok.yaml", DOMAIN_RULE) },
      // A slow receiver: the backlog is still queued when connections open, so the limit binds.
      destination: { dataReplyDelayMs: 50 },
    });
    // One message to many recipients, each with a return path of its own (VERP): a transaction each.
    const count = 12;
    const to = Array.from({ length: count }, (_, i) => `m${i}@dest.test`);
    const sent = await w.api("POST", "/v1/messages", { from: "a@sender.test", to, subject: "backlog", text: "x" });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    await w.destination.waitFor((m) => m.filter((r) => r.data.includes("Subject: backlog")).length === count, 30_000);
    assert.ok(w.destination.peakSessions <= 2, `${w.destination.peakSessions} connections at once; the rule allows 2`);
  });

  it("GET /v1/shaping shows the rules in force to the admin only", async () => {
    assert.ok(w, "the relay of the test before");
    const shown = await w.api("GET", "/v1/shaping");
    assert.equal(shown.status, 200, JSON.stringify(shown.json));
    assert.deepEqual(shown.json.rules.domains["dest.test"], { connections: 2 });
    assert.equal(shown.json.rules.default.connections, shippedShaping().rules.default.connections);
    assert.ok(shown.json.rules.providers.google, "the shipped providers stay");

    const anonymous = await fetch(w.relay.url("/v1/shaping"));
    assert.equal(anonymous.status, 401);
    const created = await runRelay(["keys", "create", "--scope", "send,read", "--json"], { dataDir: w.relay.dataDir });
    assert.equal(created.code, 0, created.stderr);
    const { token } = JSON.parse(created.stdout);
    const reader = await fetch(w.relay.url("/v1/shaping"), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(reader.status, 403);
  });

  it("GET /v1/warmup says warmup is off while the rules leave it off (the shipped rules do)", async () => {
    assert.ok(w, "the relay of the test before");
    const shown = await w.api("GET", "/v1/warmup");
    assert.equal(shown.status, 200, JSON.stringify(shown.json));
    assert.deepEqual(shown.json, { enabled: false, entries: [] });
  });

  it("a bad value stops relay serve with exit 2, naming the file, the line and the field", async () => {
    const path = shapingFile("bad.yaml", "domains:\n  dest.test:\n    connections: zero\n");
    const result = await runRelay(["serve"], { env: { RELAY_SHAPING_FILE: path }, timeoutMs: 10_000 });
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`${path}:3: domains\\."dest\\.test"\\.connections: expected a whole number`),
    );
  });

  it("a bad automation rule stops relay serve with its line and field", async () => {
    const path = shapingFile(
      "automation.yaml",
      "automation:\n  slow-down:\n    match: { code: 700 }\n    action: suspend\n    duration: 1h\n",
    );
    const result = await runRelay(["serve"], { env: { RELAY_SHAPING_FILE: path }, timeoutMs: 10_000 });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`${path}:3: automation\\.slow-down\\.match\\.code: expected a reply code`));
  });

  it("a file that cannot be read stops relay serve with exit 2", async () => {
    const path = join(dir, "missing.yaml");
    const result = await runRelay(["serve"], { env: { RELAY_SHAPING_FILE: path }, timeoutMs: 10_000 });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`RELAY_SHAPING_FILE: cannot read ${path}`));
  });
});
