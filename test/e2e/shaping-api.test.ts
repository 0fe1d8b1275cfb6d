// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * PUT /v1/shaping: the operator's rules replaced while the relay runs. A
 * lower `connections` binds the next deliveries to a destination the relay
 * already uses, without a restart (counted at the receiver: sessions at
 * once); a body with a bad value is refused with 422 naming its line and
 * field, and nothing changes; the rules given outlive a restart, and DELETE
 * returns to the shipped ones.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { type RelayProcess, startRelay, testBinary } from "../helpers/relay-process.ts";
import { relayApi, startWorld, type World } from "../helpers/world.ts";
import { shippedShaping } from "../../src/shaping/shipped.ts";

const SHIPPED_CONNECTIONS = shippedShaping().rules.default.connections;
const TRANSACTIONS = 12;

describe("PUT /v1/shaping", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  let w: World;
  let receiver: Destination;
  let restarted: RelayProcess | undefined;
  const env = () => ({
    RELAY_ROUTES: `shaped.test=127.0.0.1:${receiver.port}`,
    RELAY_BOUNCE_DOMAIN: "bounces.sender.test",
  });

  /** TRANSACTIONS transactions to shaped.test in one go (a VERP return path each); resolves once all are received. */
  async function backlog(tag: string): Promise<void> {
    const to = Array.from({ length: TRANSACTIONS }, (_, i) => `${tag}${i}@shaped.test`);
    const sent = await w.api("POST", "/v1/messages", { from: "a@sender.test", to, subject: tag, text: "x" });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    await receiver.waitFor(
      (m) => m.filter((r) => r.data.includes(`Subject: ${tag}\r\n`)).length === TRANSACTIONS,
      30_000,
    );
  }

  /** A PUT with a YAML body, as an operator sends a file. */
  const putYaml = async (relay: RelayProcess, text: string) => {
    const response = await fetch(relay.url("/v1/shaping"), {
      method: "PUT",
      headers: { authorization: `Bearer ${relay.adminToken}`, "content-type": "application/yaml" },
      body: text,
    });
    return { status: response.status, json: (await response.json()) as any };
  };

  it(
    "lowering connections binds the next deliveries to a destination in use, without a restart",
    { timeout: 60_000 },
    async () => {
      // A slow receiver: the backlog is still queued when connections open, so the limit binds.
      receiver = await startDestination({ dataReplyDelayMs: 50 });
      cleanups.push(() => receiver.close());
      w = await startWorld({ binary: testBinary, env: env() });
      cleanups.push(() => w.close());
      await backlog("before");
      assert.ok(receiver.peakSessions > 1, `${receiver.peakSessions} sessions at once under the shipped rules`);

      const put = await w.api("PUT", "/v1/shaping", { default: { connections: 1 } });
      assert.equal(put.status, 200, JSON.stringify(put.json));
      assert.equal(put.json.rules.default.connections, 1);
      assert.equal(put.json.source.kind, "api");

      // A fresh receiver on the same port counts the deliveries after the change only.
      const port = receiver.port;
      await receiver.close();
      receiver = await startDestination({ port, dataReplyDelayMs: 50 });
      cleanups.push(() => receiver.close());
      await backlog("after");
      assert.equal(receiver.peakSessions, 1, `${receiver.peakSessions} sessions at once; the rules now allow 1`);
    },
  );

  it(
    "a body with a bad value: 422 naming its line and field, and the rules in force stay",
    { timeout: 60_000 },
    async () => {
      const refused = await putYaml(w.relay, "# mine\ndomains:\n  shaped.test:\n    connections: none\n");
      assert.equal(refused.status, 422, JSON.stringify(refused.json));
      assert.deepEqual(refused.json.errors, [
        {
          field: 'domains."shaped.test".connections',
          line: 4,
          message: 'expected a whole number of at least 1, got "none"',
        },
      ]);
      const badRule = await putYaml(w.relay, "automation:\n  slow:\n    match: { code: 250 }\n    action: bounce\n");
      assert.equal(badRule.status, 422, "an automation rule is checked as in a file");
      assert.equal(badRule.json.errors[0].field, "automation.slow.match.code");

      const shown = await w.api("GET", "/v1/shaping");
      assert.equal(shown.json.rules.default.connections, 1);
      assert.equal(shown.json.rules.domains?.["shaped.test"], undefined);
    },
  );

  it("the rules given outlive a restart; DELETE returns to the shipped ones", { timeout: 60_000 }, async () => {
    const { relay } = w;
    assert.equal(await relay.stop(), 0);
    restarted = await startRelay({
      binary: testBinary,
      dataDir: relay.dataDir,
      smtpPort: relay.smtpPort,
      httpPort: relay.httpPort,
      adminToken: relay.adminToken,
      env: { RELAY_DNS_SERVERS: `127.0.0.1:${w.dns.port}`, ...env() },
    });
    cleanups.push(() => restarted!.cleanup());
    const api = relayApi(restarted).api;
    const shown = await api("GET", "/v1/shaping");
    assert.equal(shown.json.rules.default.connections, 1);
    assert.deepEqual(shown.json.source.kind, "api");
    assert.equal(shown.json.source.text, JSON.stringify({ default: { connections: 1 } }));

    const deleted = await api("DELETE", "/v1/shaping");
    assert.equal(deleted.status, 200);
    assert.equal(deleted.json.rules.default.connections, SHIPPED_CONNECTIONS);
    assert.deepEqual(deleted.json.source, { kind: "shipped" });
  });
});
