/**
 * A transactional message passes a bulk backlog (issue 13): with 100,000
 * bulk recipients queued for one destination, which takes two connections
 * and answers each transaction slowly, a transactional message to the same
 * destination is delivered within a few deliveries, not after the backlog.
 * Counted at the receiver: the bulk transactions it took in between.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { startWorld, type World } from "../helpers/world.ts";

const BULK = 100_000;
const PER_MESSAGE = 1000;
const CONNECTIONS = 2;

describe("a transactional message and a bulk backlog at one destination", () => {
  let world: World;
  after(() => world?.close());

  it("the transactional message goes within a few deliveries", { timeout: 300_000 }, async () => {
    const rules = join(mkdtempSync(join(tmpdir(), "relay-backlog-")), "rules.yaml");
    writeFileSync(rules, `domains:\n  dest.test:\n    connections: ${CONNECTIONS}\n`);
    world = await startWorld({
      env: { RELAY_SHAPING_FILE: rules, RELAY_MAX_RECIPIENTS: String(PER_MESSAGE) },
      destination: { dataReplyDelayMs: 100 },
    });
    for (let m = 0; m < BULK / PER_MESSAGE; m++) {
      const to = Array.from({ length: PER_MESSAGE }, (_, i) => `b${m}-${i}@dest.test`);
      const sent = await world.api("POST", "/v1/messages", {
        from: "news@sender.test",
        to,
        subject: "bulk",
        text: "x",
        priority: "bulk",
      });
      assert.equal(sent.status, 202, JSON.stringify(sent.json));
    }
    // The backlog is flowing: the receiver has some of it, and most of it waits.
    await world.destination.waitFor((m) => m.length >= 4, 60_000);

    const before = world.destination.messages.length;
    const urgent = await world.api("POST", "/v1/messages", {
      from: "app@sender.test",
      to: ["reset@dest.test"],
      subject: "password reset",
      text: "x",
      priority: "transactional",
    });
    assert.equal(urgent.status, 202, JSON.stringify(urgent.json));
    const received = await world.destination.waitFor(
      (m) => m.some((r) => r.data.includes("Subject: password reset")),
      60_000,
    );
    const at = received.findIndex((r) => r.data.includes("Subject: password reset"));
    const bulkBetween = at - before;
    // What was in flight on each connection, and at most the next one each: a few deliveries.
    assert.ok(bulkBetween <= 2 * CONNECTIONS, `${bulkBetween} bulk transactions went before it`);
    const left = BULK / 100 - received.filter((r) => r.data.includes("Subject: bulk")).length;
    assert.ok(left > 100, `the backlog was still there: ${left} transactions of it left`);
  });
});
