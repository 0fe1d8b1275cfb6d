// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * A destination restarts while the relay holds idle pooled connections to it.
 * Each pooled connection leaves the pool as soon as its peer ends it (FIN,
 * RST, or a 421 while idle); one found dead only when work is handed to it,
 * before any recipient was tried, is no delivery attempt: the work goes out
 * again at once on a fresh connection. Nothing is deferred for it.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type CloseHow, type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

const MAX_CONNECTIONS = 10;

interface Scenario {
  readonly world: World;
  destination: Destination;
  readonly cleanups: (() => Promise<void>)[];
}

const scenarios: Scenario[] = [];

/** A world whose restart.test mail goes to a destination of its own, which keeps idle connections a minute. */
async function scenario(env: Record<string, string> = {}): Promise<Scenario> {
  const destination = await startDestination();
  const world = await startWorld({
    env: {
      RELAY_ROUTES: `restart.test=127.0.0.1:${destination.port}`,
      RELAY_DESTINATION_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      RELAY_DESTINATION_IDLE_TIMEOUT: "1m",
      ...env,
    },
  });
  const s: Scenario = { world, destination, cleanups: [] };
  s.cleanups.push(() => world.close(), () => s.destination.close());
  scenarios.push(s);
  return s;
}

/** Stop the destination, ending its connections as `how` says, and start a new one on the same port. */
async function restart(
  s: Scenario,
  how: CloseHow,
  options: Parameters<typeof startDestination>[0] = {},
): Promise<void> {
  const old = s.destination;
  await old.close(how);
  s.cleanups.push(() => old.close()); // after a 421 the connections are the client's to close
  s.destination = await startDestination({ ...options, port: old.port });
}

/** `messages` messages of `recipients` recipients each; returns the message ids. */
async function send(w: World, tag: string, messages: number, recipients: number): Promise<string[]> {
  const sends = [];
  for (let m = 0; m < messages; m++) {
    const rcpt_to = Array.from({ length: recipients }, (_, r) => `${tag}-${m}-${r}@restart.test`);
    sends.push(
      w.api("POST", "/v1/messages", { mail_from: "a@sender.test", rcpt_to, raw: `Subject: ${tag} ${m}\r\n\r\nx\r\n` }),
    );
  }
  const answers = await Promise.all(sends);
  for (const a of answers) assert.equal(a.status, 202, JSON.stringify(a.json));
  return answers.map((a) => a.json.id);
}

/** Wait until every recipient of `ids` has a final event; returns the events of those messages. */
async function settled(w: World, ids: readonly string[], recipients: number): Promise<any[]> {
  const wanted = new Set(ids);
  let mine: any[] = [];
  const byType = async () => {
    mine = (await w.events()).filter((e) => wanted.has(e.message_id));
    const counts: Record<string, number> = {};
    for (const e of mine) counts[e.type] = (counts[e.type] ?? 0) + 1;
    return counts;
  };
  await waitUntil(
    byType,
    (counts) => (counts.delivered ?? 0) + (counts.bounced ?? 0) + (counts.expired ?? 0) >= recipients,
    {
      what: `a final event for each of ${recipients} recipients (seen: events by type)`,
      timeout: 120_000,
      every: 100,
    },
  );
  return mine;
}

/** Deliver a batch, restart the destination with the pool open, deliver another batch: none of it deferred. */
async function acrossRestart(how: CloseHow, messages: number, recipients: number): Promise<void> {
  const s = await scenario();
  const before = await send(s.world, `before-${how}`, messages, recipients);
  await settled(s.world, before, messages * recipients);
  const pooled = s.destination.openConnections;
  assert.ok(pooled > 0, "the relay keeps idle connections to the destination");

  await restart(s, how);
  const afterIds = await send(s.world, `after-${how}`, messages, recipients);
  const events = await settled(s.world, afterIds, messages * recipients);

  const deferred = events.filter((e) => e.type === "deferred");
  assert.deepEqual(
    deferred.map((e) => `${e.recipient}: ${e.reply}`),
    [],
    `${pooled} stale pooled connections deferred mail`,
  );
  const delivered = events.filter((e) => e.type === "delivered");
  assert.equal(delivered.length, messages * recipients);
  assert.ok(delivered.every((e) => e.attempt === 1), "each recipient delivered at its first attempt");
  const received = s.destination.messages.flatMap((m) => m.recipients);
  assert.equal(received.length, messages * recipients, "each recipient received once");
  assert.equal(new Set(received).size, received.length);
  assert.ok(s.destination.peakConnections <= MAX_CONNECTIONS, `${s.destination.peakConnections} connections at once`);
}

describe("a destination restarted under idle pooled connections", () => {
  after(async () => {
    for (const s of scenarios) for (const cleanup of s.cleanups) await cleanup();
  });

  // The timeout is a safety net, not a threshold.
  it(
    "closed (FIN): a few thousand recipients on both sides of the restart, none deferred",
    { timeout: 300_000 },
    async () => {
      await acrossRestart("fin", 150, 20);
    },
  );

  it("reset (RST): none deferred", async () => {
    await acrossRestart("reset", 40, 5);
  });

  it("a 421 on each idle connection: the relay closes them, none deferred", async () => {
    await acrossRestart("421", 40, 5);
  });

  it("a host that rebooted (the relay learns only when it uses a pooled connection, from an RST): none deferred", async () => {
    await acrossRestart("forget", 40, 5);
  });

  it("a destination that is down after the restart is deferred once per recipient, with no reconnect loop", async () => {
    const s = await scenario({ RELAY_RETRY_SCHEDULE: "1h" });
    const before = await send(s.world, "up", 20, 1);
    await settled(s.world, before, 20);
    assert.ok(s.destination.openConnections > 0, "the relay keeps idle connections to the destination");

    await restart(s, "fin", { greetingCode: 421 });
    const down = await send(s.world, "down", 10, 1);
    for (const id of down) await s.world.waitForEvent((e) => e.type === "deferred" && e.message_id === id);
    const events = (await s.world.events()).filter((e) => down.includes(e.message_id) && e.type !== "received");
    assert.equal(events.length, 10, `one event per recipient: ${JSON.stringify(events)}`);
    // Each is deferred once: tried and told 421, or, when it reached the destination after that 421 paused it,
    // handed back untried with the reply that paused it (which of the two depends on when each was claimed).
    const tried = (e: any) => e.attempt === 1 && /^421 /.test(e.reply);
    const heldAfter421 = (e: any) =>
      e.attempt === 0 && /^451 4\.4\.1 destination suspended after: .*service not available/.test(e.reply);
    assert.ok(events.every((e) => e.type === "deferred" && (tried(e) || heldAfter421(e))), JSON.stringify(events));
    assert.ok(events.some(tried), "the first was tried");
    assert.ok(
      s.destination.connections <= 3,
      `10 messages to a host that is down opened ${s.destination.connections} connections`,
    );
  });
});
