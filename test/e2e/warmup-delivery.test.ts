/**
 * Warmup in delivery, against the real relay (the ledger's month is
 * simulated in test/unit): with warmup switched on by an operator's file and
 * a first step of 3 a day and 3 an hour, a backlog sends one message and
 * holds the rest in the queue, spread over the hour at the hourly cap's
 * spacing; none is bounced, none is counted as an attempt. GET /v1/warmup
 * shows what went, and the state survives a restart.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { startRelay } from "../helpers/relay-process.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

const HOUR = 3_600_000;
const RULES = `warmup:
  enabled: true
  default:
    steps:
      - { daily: 3, hourly: 3 }
      - { daily: 10, hourly: 5 }
`;

describe("warmup caps in delivery", () => {
  let world: World;
  after(() => world?.close());

  it("hold a backlog over the cap in the queue, spread over the hour; GET /v1/warmup shows it", {
    timeout: 120_000,
  }, async () => {
    const rules = join(mkdtempSync(join(tmpdir(), "relay-warmup-")), "rules.yaml");
    writeFileSync(rules, RULES);
    world = await startWorld({ env: { RELAY_SHAPING_FILE: rules, RELAY_BOUNCE_DOMAIN: "bounces.sender.test" } });
    const to = Array.from({ length: 5 }, (_, i) => `r${i}@dest.test`);
    const sent = await world.api("POST", "/v1/messages", { from: "a@sender.test", to, subject: "warm", text: "x" });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const submitted = Date.now();
    await world.destination.waitFor(1, 30_000);

    const view = await waitUntil(
      () => world.api("GET", `/v1/messages/${sent.json.id}`),
      (v) => v.json.recipients.filter((r: { state: string }) => r.state === "queued").length === 4,
      { what: "four recipients waiting", timeout: 30_000 },
    );
    const waiting = view.json.recipients.filter((r: { state: string }) => r.state === "queued");
    for (const r of waiting) assert.equal(r.attempts, 0, "waiting for warmup is no attempt");
    const turns = waiting.map((r: { next_attempt_at: string }) => Date.parse(r.next_attempt_at) - submitted).sort(
      (a: number, b: number) => a - b,
    );
    // One every 20 minutes (an hour over the hourly cap of 3), not all at the top of the next hour.
    turns.forEach((turn: number, i: number) => {
      assert.ok(Math.abs(turn - (i + 1) * (HOUR / 3)) < 60_000, `turn ${i + 1} at ${Math.round(turn / 60_000)} min`);
    });
    assert.equal(world.destination.messages.length, 1, "only what the cap allows went out");

    const warmup = await world.api("GET", "/v1/warmup");
    assert.equal(warmup.status, 200);
    assert.equal(warmup.json.enabled, true);
    const [entry] = warmup.json.entries;
    assert.equal(entry.provider, "other");
    assert.deepEqual([entry.step, entry.steps, entry.caps, entry.sent.hour], [1, 2, { daily: 3, hourly: 3 }, 1]);

    assert.equal(await world.relay.stop(), 0);
    const restarted = await startRelay({
      dataDir: world.relay.dataDir,
      adminToken: world.relay.adminToken,
      env: { RELAY_SHAPING_FILE: rules },
    });
    try {
      const again = await fetch(restarted.url("/v1/warmup"), {
        headers: { authorization: `Bearer ${world.relay.adminToken}` },
      });
      const json = await again.json() as { entries: { sent: { hour: number } }[] };
      assert.equal(json.entries[0]?.sent.hour, 1, "the count survives a restart");
    } finally {
      await restarted.stop();
    }
  });
});
