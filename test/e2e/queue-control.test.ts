// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * Steering a destination of the running relay with `relay queue ...` (which
 * reaches the node through its HTTP API) and POST /v1/queue/...: a
 * suspended destination gets no connection until it is resumed, then what
 * waited goes out; retry sends a deferred recipient now rather than on the
 * retry schedule; GET /v1/queue shows each destination with its MX hosts,
 * rules, state, backlog and last reply, and mail not routed yet by domain.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { runRelay, testBinary } from "../helpers/relay-process.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

const worlds: World[] = [];
async function world(): Promise<World> {
  // Retries an hour apart: anything that goes sooner went because it was told to.
  const w = await startWorld({ binary: testBinary, env: { RELAY_RETRY_SCHEDULE: "1h" } });
  worlds.push(w);
  return w;
}

const queue = (w: World, ...args: string[]) =>
  runRelay(["queue", ...args], { dataDir: w.relay.dataDir, binary: testBinary });

async function send(w: World, to: string, extra: Record<string, unknown> = {}): Promise<string> {
  const sent = await w.api("POST", "/v1/messages", {
    from: "a@sender.test",
    to: [to],
    subject: "s",
    text: "x",
    ...extra,
  });
  assert.equal(sent.status, 202, JSON.stringify(sent.json));
  return sent.json.id;
}

/** GET /v1/queue's entry for the destination of dest.test, once `ready` holds for it. */
const destinationOnceItShows = (w: World, ready: (d: any) => boolean) =>
  waitUntil(
    async () => (await w.api("GET", "/v1/queue")).json.destinations.find((d: any) => d.mx_hosts[0] === "mx.dest.test"),
    (d) => d !== undefined && ready(d),
    { what: "the destination in GET /v1/queue", timeout: 20_000 },
  );

describe("relay queue and /v1/queue", () => {
  after(async () => {
    for (const w of worlds) await w.close();
  });

  it(
    "suspend: nothing is attempted at the receiver until resume, then what waited goes",
    { timeout: 60_000 },
    async () => {
      const w = await world();
      const suspended = await queue(w, "suspend", "dest.test", "--for", "1h");
      assert.equal(suspended.code, 0, suspended.stderr);
      const name = /^relay: suspended (mx\.dest\.test~[0-9a-f]{8}) until \S+Z$/m.exec(suspended.stdout)?.[1];
      assert.ok(name, suspended.stdout);

      const id = await send(w, "a@dest.test");
      const held = await destinationOnceItShows(w, (d) => d.queued === 1 && d.in_flight === 0);
      assert.equal(held.name, name);
      assert.equal(held.state, "suspended");
      const message = await w.api("GET", `/v1/messages/${id}`);
      assert.equal(message.json.recipients[0].state, "queued");
      assert.equal(message.json.recipients[0].attempts, 0, "no attempt counted");
      assert.equal(w.destination.connections, 0, "nothing attempted at the receiver");

      const summary = await queue(w, "summary");
      assert.equal(summary.code, 0, summary.stderr);
      assert.match(
        summary.stdout,
        new RegExp(`^${name.replaceAll(".", "\\.")}\\s+suspended until \\S+\\s+1\\s+0\\s+0\\s`, "m"),
      );

      const resumed = await queue(w, "resume", name);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(resumed.stdout.trim(), `relay: resumed ${name}; 1 recipient(s) due now`);
      await w.destination.waitFor(1, 20_000);
      await w.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
      assert.equal((await destinationOnceItShows(w, (d) => d.queued === 0)).state, "normal");
    },
  );

  it("retry: a deferred recipient goes now, not on the retry schedule", { timeout: 60_000 }, async () => {
    const w = await world();
    const id = await send(w, "greylist@dest.test");
    await w.waitForEvent((e) => e.type === "deferred" && e.message_id === id);

    const retried = await w.api("POST", "/v1/queue/dest.test/retry");
    assert.equal(retried.status, 200, JSON.stringify(retried.json));
    assert.equal(retried.json.due_now, 1);
    await w.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
  });

  it(
    "GET /v1/queue: each destination with its MX hosts, rules, state, backlog and last reply; mail not routed yet by domain",
    { timeout: 60_000 },
    async () => {
      const w = await world();
      const id = await send(w, "b@dest.test");
      await w.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
      await send(w, "c@later.test", { send_at: new Date(Date.now() + 3_600_000).toISOString() });

      const { status, json } = await w.api("GET", "/v1/queue");
      assert.equal(status, 200);
      const dest = json.destinations.find((d: any) => d.mx_hosts[0] === "mx.dest.test");
      assert.match(dest.name, /^mx\.dest\.test~[0-9a-f]{8}$/);
      assert.equal(dest.provider, null);
      assert.equal(dest.state, "normal");
      assert.deepEqual(dest.rules.connections, { value: 20, from: { level: "default" } });
      assert.deepEqual(dest.rules.idle_timeout, { value: "2s", from: { level: "default" } });
      assert.equal(dest.queued + dest.deferred + dest.in_flight, 0);
      assert.match(dest.last_reply.text, /^250 /);
      assert.deepEqual(json.domains.map((d: any) => [d.domain, d.queued, d.deferred]), [["later.test", 1, 0]]);
      assert.equal(json.truncated, false);
    },
  );

  it("a destination that is none: 404 over HTTP, exit 1 from the CLI, saying why", { timeout: 60_000 }, async () => {
    const w = await world();
    const http = await w.api("POST", "/v1/queue/nomx.test/suspend", { duration: "1h" });
    assert.equal(http.status, 404, JSON.stringify(http.json));
    assert.match(http.json.detail, /^mail for nomx\.test has no destination now: /);
    const badDuration = await w.api("POST", "/v1/queue/dest.test/suspend", { duration: "soon" });
    assert.equal(badDuration.status, 422);
    assert.deepEqual(badDuration.json.errors, [
      { field: "duration", message: "expected a duration such as 30m, 2h or 1d" },
    ]);
    const cli = await queue(w, "retry", "nowhere~00000000");
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /404 no destination is named "nowhere~00000000", and it is no domain/);
    const usage = await queue(w, "suspend", "dest.test");
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--for: expected a duration/);
  });
});
