/**
 * Message and connection rates from the shaping rules, counted where they
 * matter: at the receiver. A backlog larger than what can go within the
 * pacing horizon is handed back to the queue with its turns and still goes
 * out at the rate, each recipient in one attempt, none deferred.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { PACING_HORIZON_MS } from "../../src/delivery/destination.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

const MESSAGES_PER_SECOND = 2;
const CONNECTIONS_PER_SECOND = 1;
/** More than can go within the horizon, so some of it waits in the queue for its turn. */
const COUNT = (PACING_HORIZON_MS / 1000) * MESSAGES_PER_SECOND + 10;
/**
 * Slack between the two ends: the relay spaces the transactions it starts,
 * the receiver stamps the end of each one's data, which on a busy shared
 * machine may come up to a few hundred milliseconds later for one than for
 * the next (a fresh-clone CI run with the machine loaded saw more than 150).
 * Under the 500 ms spacing, so three messages within 750 ms (half again the
 * rate) still fail.
 */
const JITTER_MS = 250;

/** The most events within any window of `ms`, less the jitter. */
function mostWithin(times: readonly number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  return Math.max(...sorted.map((t) => sorted.filter((u) => u >= t && u < t + ms - JITTER_MS).length));
}

describe("message and connection rates", () => {
  let world: World;
  after(() => world?.close());

  it(
    "are never exceeded at the receiver, and a backlog beyond the horizon goes at its turns",
    { timeout: 120_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "relay-pacing-"));
      const rules = join(dir, "rules.yaml");
      writeFileSync(
        rules,
        `domains:\n  dest.test:\n    message_rate: ${MESSAGES_PER_SECOND}/s\n    connection_rate: ${CONNECTIONS_PER_SECOND}/s\n`,
      );
      world = await startWorld({ env: { RELAY_BOUNCE_DOMAIN: "bounces.sender.test", RELAY_SHAPING_FILE: rules } });
      // One message, a VERP return path per recipient: a transaction each.
      const to = Array.from({ length: COUNT }, (_, i) => `r${i}@dest.test`);
      const sent = await world.api("POST", "/v1/messages", { from: "a@sender.test", to, subject: "paced", text: "x" });
      assert.equal(sent.status, 202, JSON.stringify(sent.json));
      const received = await world.destination.waitFor(COUNT, 60_000);

      const most = mostWithin(received.map((m) => m.receivedAt), 1000);
      assert.ok(most <= MESSAGES_PER_SECOND, `${most} messages within a second; the rate is ${MESSAGES_PER_SECOND}/s`);
      const opened = mostWithin(world.destination.sessions.map((s) => s.openedAt), 1000);
      assert.ok(opened <= CONNECTIONS_PER_SECOND, `${opened} connections opened within a second`);
      const span = Math.max(...received.map((m) => m.receivedAt)) - Math.min(...received.map((m) => m.receivedAt));
      assert.ok(span >= ((COUNT - 1) / MESSAGES_PER_SECOND) * 1000 - JITTER_MS, `all ${COUNT} went out in ${span} ms`);

      // The destination has each message before the relay has recorded its outcome: wait for the last one.
      await waitUntil(
        async () => (await world.events()).filter((e) => e.type === "delivered").length,
        (delivered) => delivered === COUNT,
        { what: `${COUNT} delivered events`, every: 100 },
      );
      const view = await world.api("GET", `/v1/messages/${sent.json.id}`);
      for (const r of view.json.recipients) {
        assert.equal(r.state, "delivered");
        assert.equal(r.attempts, 1, `${r.email}: waiting for its turn is no attempt`);
      }
      assert.ok(!view.json.events.some((e: { type: string }) => e.type === "deferred"), "nothing was deferred");
    },
  );
});
