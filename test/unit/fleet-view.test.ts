import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatElapsed } from "../../src/dashboard/layout.tsx";
import { fleetView, nodeStatus } from "../../src/fleet/fleet-view.ts";
import type { NodeRecord } from "../../src/fleet/node-registry.ts";

const NOW = Date.UTC(2026, 11, 7, 5, 0, 0);
const DEAD_AFTER = 30_000;

function record(fields: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id: "node-1",
    sourceIp: "192.0.2.1",
    hostname: "mx1.example",
    apiUrl: "http://192.0.2.1:8025",
    version: "1.0.0",
    startedAt: NOW - 3_600_000,
    heartbeatAt: NOW - 1_000,
    queueDepth: 3,
    state: "running",
    epoch: 0,
    ...fields,
  };
}

describe("nodeStatus", () => {
  it("is up or draining while the node beats, down once silent longer than RELAY_NODE_DEAD_AFTER", () => {
    assert.equal(nodeStatus(record(), DEAD_AFTER, NOW), "up");
    assert.equal(nodeStatus(record({ state: "draining" }), DEAD_AFTER, NOW), "draining");
    assert.equal(nodeStatus(record({ heartbeatAt: NOW - DEAD_AFTER }), DEAD_AFTER, NOW), "up");
    assert.equal(nodeStatus(record({ heartbeatAt: NOW - DEAD_AFTER - 1 }), DEAD_AFTER, NOW), "down");
    assert.equal(nodeStatus(record({ state: "draining", heartbeatAt: 0 }), DEAD_AFTER, NOW), "down");
  });

  it("is stopped when the node said so, however long ago", () => {
    assert.equal(nodeStatus(record({ state: "stopped", heartbeatAt: 0 }), DEAD_AFTER, NOW), "stopped");
  });
});

describe("fleetView", () => {
  it("marks this node, and gives the link to the shared server with its outbox", async () => {
    const view = await fleetView({
      self: "node-2",
      shared: true,
      nodes: async () => [record(), record({ id: "node-2", heartbeatAt: NOW - 60_000 })],
      deadAfterMs: DEAD_AFTER,
      partitionedSince: () => NOW - 60_000,
      outboxWaiting: async () => 2,
      now: () => NOW,
    });
    assert.equal(view.partitionedSince, NOW - 60_000);
    assert.equal(view.outbox, 2);
    assert.deepEqual(view.nodes.map((n) => [n.id, n.self, n.status]), [
      ["node-1", false, "up"],
      ["node-2", true, "down"],
    ]);
  });

  it("has no outbox for a node alone", async () => {
    const view = await fleetView({
      self: "node-1",
      shared: false,
      nodes: async () => [record()],
      deadAfterMs: DEAD_AFTER,
      partitionedSince: () => undefined,
      now: () => NOW,
    });
    assert.equal(view.outbox, undefined);
    assert.equal(view.partitionedSince, undefined);
  });
});

describe("formatElapsed", () => {
  it("says how long to its two largest units", () => {
    assert.equal(formatElapsed(0), "0s");
    assert.equal(formatElapsed(999), "0s");
    assert.equal(formatElapsed(45_000), "45s");
    assert.equal(formatElapsed(185_000), "3m 5s");
    assert.equal(formatElapsed(2 * 3_600_000 + 10 * 60_000 + 7_000), "2h 10m");
    assert.equal(formatElapsed(4 * 86_400_000 + 3_600_000), "4d 1h");
    assert.equal(formatElapsed(3_600_000), "1h 0m");
  });

  it("says 0s for a time a clock step put in the future", () => {
    assert.equal(formatElapsed(-5_000), "0s");
  });
});
