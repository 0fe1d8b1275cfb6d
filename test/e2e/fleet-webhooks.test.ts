// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * Webhook endpoints in a fleet (issue 17): two relay nodes on 127.0.0.2 and
 * .3 sharing a real sqld. An endpoint registered through one node is sent
 * every node's events, each node its own, signed; deleted through either,
 * no node sends it anything more.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Webhook } from "standardwebhooks";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import { type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { type Sqld, sqldMissing, startSqld } from "../fixtures/sqld.ts";
import { freePorts, type RelayProcess, startRelay } from "../helpers/relay-process.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWebhookReceiver, type WebhookReceiver, type WebhookRequestSeen } from "../helpers/webhook-receiver.ts";
import { defaultZone, type RelayApi, relayApi } from "../helpers/world.ts";

interface Node extends RelayApi {
  readonly id: string;
  readonly relay: RelayProcess;
}

/** How long what one node writes may take to reach another: its replica pulls every second. */
const SPREAD_MS = 10_000;
const HEAVY = { timeout: 60_000 };

/** The events of a delivery, after checking its signature as a receiver would. */
function verifiedEvents(request: WebhookRequestSeen, secret: string): any[] {
  const payload = new Webhook(secret).verify(request.body, request.headers) as any;
  assert.equal(payload.type, "relay.events");
  return payload.data.events;
}

describe("fleet webhooks: two nodes, one sqld", { skip: sqldMissing }, () => {
  let sqld: Sqld;
  let dns: DnsServer;
  let destination: Destination;
  const receivers: WebhookReceiver[] = [];
  const nodes: Node[] = [];

  before(async () => {
    sqld = await startSqld();
    dns = await startDnsServer(defaultZone());
    destination = await startDestination();
    const started = await Promise.all(
      ["127.0.0.2", "127.0.0.3"].map(async (ip, i) => {
        const id = `node-${i + 1}`;
        const [smtpPort, httpPort] = await freePorts(2);
        const relay = await startRelay({
          smtpPort,
          httpPort,
          env: {
            RELAY_NODE_ID: id,
            RELAY_SOURCE_IP: ip,
            RELAY_SMTP_LISTEN: `${ip}:${smtpPort}`,
            RELAY_SHARED_DB_URL: sqld.url,
            RELAY_DNS_SERVERS: `127.0.0.1:${dns.port}`,
            RELAY_MX_PORT: String(destination.port),
            RELAY_SENDER_POLICY: "any",
            RELAY_WEBHOOK_ALLOW_PRIVATE: "true",
          },
        });
        return { id, relay, ...relayApi(relay) };
      }),
    );
    nodes.push(...started);
  });

  after(async () => {
    for (const node of nodes) await node.relay.cleanup();
    for (const receiver of receivers) await receiver.close();
    await destination?.close();
    await dns?.close();
    await sqld?.close();
  });

  /** Send `count` messages through `node`; resolves once each is delivered, with their ids. */
  async function sendDelivered(node: Node, count: number, tag: string): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const sent = await node.api("POST", "/v1/messages", {
        mail_from: "app@sender.test",
        rcpt_to: [`${tag}-${i}@dest.test`],
        raw: `From: app@sender.test\r\nSubject: ${tag} ${i}\r\n\r\nsent through ${node.id}\r\n`,
      });
      assert.equal(sent.status, 202, JSON.stringify(sent.json));
      ids.push(sent.json.id);
    }
    for (const m of ids) await node.waitForEvent((e) => e.type === "delivered" && e.message_id === m);
    return ids;
  }

  /** The node's events about these messages, as a webhook delivery carries them. */
  async function eventsOf(node: Node, messageIds: readonly string[]): Promise<any[]> {
    const all = await node.events();
    return all.filter((e) => messageIds.includes(e.message_id)).map((e) => ({ ...e, node: node.id }));
  }

  async function register(node: Node, receiver: WebhookReceiver) {
    const registered = await node.api("POST", "/v1/webhooks", { url: receiver.url, events: ["*"] });
    assert.equal(registered.status, 201, JSON.stringify(registered.json));
    return registered.json as { id: string; secret: string };
  }

  const listed = async (node: Node) => (await node.api("GET", "/v1/webhooks")).json.webhooks.map((w: any) => w.id);

  it("an endpoint registered through one node is sent each node's events since, signed, each once", HEAVY, async () => {
    const [a, b] = nodes as [Node, Node];
    const receiver = await startWebhookReceiver("ok");
    receivers.push(receiver);
    const before = await sendDelivered(b, 1, "before");

    const { id, secret } = await register(a, receiver);
    // Sent at once: B learns of the endpoint a replica pull later, and still sends it what it wrote meanwhile.
    const [throughA, throughB] = await Promise.all([sendDelivered(a, 2, "via-a"), sendDelivered(b, 3, "via-b")]);
    const expected = [...await eventsOf(a, throughA), ...await eventsOf(b, throughB)];
    const taken = () => receiver.acknowledged().flatMap((r) => verifiedEvents(r, secret));
    await waitUntil(taken, (events) => events.length >= expected.length, {
      what: "both nodes' events taken",
      timeout: SPREAD_MS,
    });

    const key = (e: any) => `${e.node}/${e.id}`;
    const keys = taken().map(key);
    assert.deepEqual(keys.toSorted(), expected.map(key).toSorted(), "each node's events, each once");
    for (const node of [a, b]) {
      const fromNode = taken().filter((e) => e.node === node.id);
      assert.deepEqual(fromNode, expected.filter((e) => e.node === node.id), `${node.id}'s in its log order`);
    }
    assert.ok(!taken().some((e) => before.includes(e.message_id)), "nothing from before the registration");
    const batchIds = receiver.acknowledged().map((r) => r.headers["webhook-id"]);
    assert.equal(new Set(batchIds).size, batchIds.length, `a webhook-id per batch: ${batchIds.join(", ")}`);

    // Each node answers for its own progress.
    for (const node of [a, b]) {
      const status = await node.api("GET", `/v1/webhooks/${id}`);
      assert.equal(status.status, 200);
      const last = expected.filter((e) => e.node === node.id).at(-1);
      assert.deepEqual([status.json.backlog, status.json.dead_letters], [0, 0]);
      assert.ok(Number(status.json.cursor) >= last.id, `${node.id}: cursor ${status.json.cursor}`);
    }
  });

  it("an endpoint deleted through one node gets nothing more from the other", HEAVY, async () => {
    const [a, b] = nodes as [Node, Node];
    const deleted = await startWebhookReceiver("ok");
    const kept = await startWebhookReceiver("ok");
    receivers.push(deleted, kept);
    const gone = await register(a, deleted);
    const stays = await register(a, kept);
    await waitUntil(() => listed(b), (ids) => ids.includes(gone.id), { what: "the endpoint on B", timeout: SPREAD_MS });
    const first = await sendDelivered(a, 1, "first");
    const seenBy = (receiver: WebhookReceiver, secret: string, messageIds: readonly string[]) => () =>
      receiver.acknowledged().flatMap((r) => verifiedEvents(r, secret)).filter((e) =>
        messageIds.includes(e.message_id)
      );
    await waitUntil(seenBy(deleted, gone.secret, first), (events) => events.length === 2, {
      what: "A's events at the endpoint",
      timeout: SPREAD_MS,
    });

    const removed = await b.api("DELETE", `/v1/webhooks/${gone.id}`);
    assert.equal(removed.status, 200, JSON.stringify(removed.json));
    await waitUntil(() => listed(a), (ids) => !ids.includes(gone.id), {
      what: "the deletion on A",
      timeout: SPREAD_MS,
    });
    assert.equal((await a.api("GET", `/v1/webhooks/${gone.id}`)).status, 404);
    const later = await sendDelivered(a, 2, "after-delete");
    // The endpoint kept has taken A's newer events: A's dispatcher has been through them.
    await waitUntil(seenBy(kept, stays.secret, later), (events) => events.length === 4, {
      what: "A's newer events at the endpoint kept",
      timeout: SPREAD_MS,
    });
    assert.deepEqual(seenBy(deleted, gone.secret, later)(), [], "nothing sent to the deleted endpoint");
  });
});
