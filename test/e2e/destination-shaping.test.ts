/**
 * Each destination's connection limits come from the shaping rules: a
 * recipient domain whose MX host a shipped provider runs (matched by the
 * suffix of the MX name) gets that provider's connections and messages per
 * connection, as the shipped file says; a domain at the default level keeps
 * the default's. Counted at the destination: sessions in progress at once
 * (a connection that said QUIT is closing, and its next one may be accepted
 * before its close reaches the server) and transactions per connection.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { shippedShaping } from "../../src/shaping/shipped.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

const RULES = shippedShaping().rules;
const PROVIDER = "qq";
const PROVIDER_MX = "mx3.qq.com";
const provider = RULES.providers.get(PROVIDER)!.limits;
const providerConnections = provider.connections ?? RULES.default.connections;
const providerMessages = provider.messagesPerConnection ?? RULES.default.messagesPerConnection;

const worlds: World[] = [];
async function world(): Promise<World> {
  const w = await startWorld({
    zone: {
      ...defaultZone(),
      "hosted.test": { MX: [{ preference: 10, exchange: PROVIDER_MX }] },
      [PROVIDER_MX]: { A: ["127.0.0.1"] },
    },
    env: { RELAY_BOUNCE_DOMAIN: "bounces.sender.test" },
    // A slow receiver: the backlog is still queued when connections open, so the limits bind.
    destination: { dataReplyDelayMs: 50 },
  });
  worlds.push(w);
  return w;
}

/**
 * Queue `count` transactions in one go: one message to `count` recipients at
 * `domain`, each with a return path of its own (VERP, RELAY_BOUNCE_DOMAIN),
 * so each is a transaction of its own; resolve when all are received.
 */
async function backlog(w: World, domain: string, count: number): Promise<void> {
  const to = Array.from({ length: count }, (_, i) => `m${i}@${domain}`);
  const sent = await w.api("POST", "/v1/messages", { from: "a@sender.test", to, subject: "backlog", text: "x" });
  assert.equal(sent.status, 202, JSON.stringify(sent.json));
  await w.destination.waitFor((m) => m.filter((r) => r.data.includes("Subject: backlog")).length === count, 30_000);
}

const messagesPerSession = (w: World) =>
  w.destination.sessions.map((s) => s.commands.filter((c) => /^MAIL FROM:/i.test(c)).length);

describe("connection limits per destination from the shaping rules", () => {
  after(async () => {
    for (const w of worlds) await w.close();
  });

  it("a provider's MX gets the provider's connections and messages per connection", async () => {
    assert.ok(providerConnections < RULES.default.connections, "the provider allows fewer connections");
    assert.ok(providerMessages < RULES.default.messagesPerConnection, "and fewer messages per connection");
    const w = await world();
    // More than the provider's connections can carry without reconnecting.
    const count = 2 * providerConnections * providerMessages;
    await backlog(w, "hosted.test", count);
    assert.ok(
      w.destination.peakSessions <= providerConnections,
      `${w.destination.peakSessions} connections at once; ${PROVIDER} allows ${providerConnections}`,
    );
    const most = Math.max(...messagesPerSession(w));
    assert.ok(most <= providerMessages, `${most} messages on one connection; ${PROVIDER} allows ${providerMessages}`);
    assert.equal(messagesPerSession(w).reduce((a, b) => a + b, 0), count);
  });

  it("a domain at the default level keeps the default's limits", async () => {
    const w = await world();
    const count = 2 * RULES.default.connections;
    await backlog(w, "dest.test", count);
    assert.ok(
      w.destination.peakSessions <= RULES.default.connections,
      `${w.destination.peakSessions} connections at once; the default allows ${RULES.default.connections}`,
    );
    assert.ok(
      w.destination.peakSessions > providerConnections,
      `${w.destination.peakSessions} connections at once: the provider's limit must not apply here`,
    );
    assert.ok(Math.max(...messagesPerSession(w)) <= RULES.default.messagesPerConnection);
  });
});
