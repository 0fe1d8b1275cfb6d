import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { systemClock } from "../../src/core/clock.ts";
import { createPlanner } from "../../src/delivery/planner.ts";
import type { RouteResult } from "../../src/delivery/route.ts";
import { SandboxTransport } from "../../src/delivery/sandbox.ts";
import type { Plan } from "../../src/delivery/plan.ts";
import { destinationShaping } from "../../src/delivery/shaping.ts";
import { TlsFallbackMemory } from "../../src/delivery/tls-memory.ts";
import { withDefaultOverrides } from "../../src/shaping/default-overrides.ts";
import type { ShapingRules } from "../../src/shaping/rules.ts";
import { loadOperatorShaping, shippedShaping } from "../../src/shaping/shipped.ts";

const SHIPPED = shippedShaping().rules;
const YAHOO_MX = "mta5.am0.yahoodns.net";

function planner(rules: ShapingRules, mx: string) {
  const route: RouteResult = { kind: "hosts", hosts: [{ name: mx, addresses: ["127.0.0.1"], port: 25 }] };
  const planFor = createPlanner({
    route: async () => route,
    sandbox: false,
    sandboxTransport: new SandboxTransport(),
    smtp: { heloName: "relay.test", tlsMemory: new TlsFallbackMemory(systemClock) },
    shaping: () => rules,
  });
  return async (domain: string) => {
    const plan: Plan = await planFor(domain, "recipient-policy");
    assert.equal(plan.kind, "destination");
    return plan as Extract<Plan, { kind: "destination" }>;
  };
}

describe("each destination's limits come from the shaping rules", () => {
  it("a provider recognised by its MX host gives its numbers; what it leaves out comes from the default", async () => {
    const yahoo = SHIPPED.providers.get("yahoo")!.limits;
    assert.notEqual(yahoo.messagesPerConnection, SHIPPED.default.messagesPerConnection);
    const plan = await planner(SHIPPED, YAHOO_MX)("yahoo.test");
    assert.deepEqual(plan.limits, {
      maxConnections: yahoo.connections ?? SHIPPED.default.connections,
      maxMessagesPerConnection: yahoo.messagesPerConnection,
      idleMs: yahoo.idleTimeout ?? SHIPPED.default.idleTimeout,
    });
    assert.equal(plan.key, `${YAHOO_MX}:25|provider:yahoo`);
  });

  it("an MX no provider runs gets the default level, under the plain MX key", async () => {
    const plan = await planner(SHIPPED, "mx.example.test")("example.test");
    assert.deepEqual(plan.limits, {
      maxConnections: SHIPPED.default.connections,
      maxMessagesPerConnection: SHIPPED.default.messagesPerConnection,
      idleMs: SHIPPED.default.idleTimeout,
    });
    assert.equal(plan.key, "mx.example.test:25");
  });

  it("a rule for one recipient domain gives it a destination of its own at a shared MX", async () => {
    const loaded = loadOperatorShaping(
      'domains:\n  "own.test":\n    connections: 3\n    recipients_per_transaction: 7\n',
      "shaping.yaml",
    );
    assert.ok(loaded.ok);
    const plan = planner(loaded.rules, "mx.shared.test");
    const own = await plan("own.test");
    const other = await plan("other.test");
    assert.equal(own.limits.maxConnections, 3);
    assert.equal(other.limits.maxConnections, SHIPPED.default.connections);
    assert.notEqual(own.key, other.key);
    const target = { recipientDomain: "own.test", mxHosts: ["mx.shared.test"] };
    assert.equal(destinationShaping(loaded.rules, target).recipientsPerTransaction, 7);
  });

  it("the retry schedule is the destination's own: a domain rule for it gives the domain a destination of its own", async () => {
    const loaded = loadOperatorShaping(
      'providers:\n  yahoo:\n    retry: [15m]\ndomains:\n  "own.test":\n    retry: [1h, 2h]\n',
      "shaping.yaml",
    );
    assert.ok(loaded.ok);
    const yahoo = await planner(loaded.rules, YAHOO_MX)("yahoo.test");
    assert.deepEqual(yahoo.retry, [15 * 60_000]);
    const plan = planner(loaded.rules, "mx.shared.test");
    const own = await plan("own.test");
    const other = await plan("other.test");
    assert.deepEqual(own.retry, [3_600_000, 7_200_000]);
    assert.deepEqual(other.retry, SHIPPED.default.retrySchedule);
    assert.notEqual(own.key, other.key);
  });

  it("mail without a destination is deferred on the default level's schedule", async () => {
    const rules = withDefaultOverrides(SHIPPED, { retrySchedule: [90_000] });
    const planFor = createPlanner({
      route: async () => ({ kind: "temporary", reason: "DNS lookup timed out" }),
      sandbox: false,
      sandboxTransport: new SandboxTransport(),
      smtp: { heloName: "relay.test", tlsMemory: new TlsFallbackMemory(systemClock) },
      shaping: () => rules,
    });
    const plan = await planFor("example.test", "recipient-policy");
    assert.equal(plan.kind, "defer");
    assert.deepEqual(plan.retry, [90_000]);
  });

  it("the environment's settings override the default level, not a provider's own numbers", async () => {
    const rules = withDefaultOverrides(SHIPPED, {
      connections: 2,
      messagesPerConnection: 3,
      idleTimeout: undefined,
      recipientsPerTransaction: 4,
    });
    const plain = await planner(rules, "mx.example.test")("example.test");
    assert.deepEqual(plain.limits, {
      maxConnections: 2,
      maxMessagesPerConnection: 3,
      idleMs: SHIPPED.default.idleTimeout,
    });
    const yahoo = await planner(rules, YAHOO_MX)("yahoo.test");
    assert.equal(yahoo.limits.maxMessagesPerConnection, SHIPPED.providers.get("yahoo")!.limits.messagesPerConnection);
    assert.equal(yahoo.limits.maxConnections, 2);
    assert.equal(
      destinationShaping(rules, { recipientDomain: "example.test", mxHosts: [] }).recipientsPerTransaction,
      4,
    );
  });
});
