// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * A fleet of three relay nodes on 127.0.0.2, .3 and .4 sharing their state
 * through a real sqld (issue 17): what one node is told, the others know
 * within seconds; each sends from its own address only; with sqld stopped
 * every node keeps accepting and sending, keeps its shared writes in its
 * outbox and applies them once sqld is back; a node leaves the fleet
 * drained (relay drain), stopped and removed (relay nodes remove).
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import { type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { signJwt, type Sqld, sqldMissing, startSqld } from "../fixtures/sqld.ts";
import { type FleetNode, restartFleetNode, startFleet } from "../helpers/fleet-nodes.ts";
import { runRelay, startRelay } from "../helpers/relay-process.ts";
import { SmtpTalk } from "../helpers/smtp-talk.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { defaultZone, relayApi } from "../helpers/world.ts";

/** How long what one node writes may take to reach another: its replica pulls every second. */
const SPREAD_MS = 10_000;

describe("fleet: three nodes, one sqld", { skip: sqldMissing }, () => {
  let sqld: Sqld;
  let dns: DnsServer;
  let destination: Destination;
  const nodes: FleetNode[] = [];

  const fleetEnv = () => ({
    RELAY_SHARED_DB_URL: sqld.url,
    RELAY_DNS_SERVERS: `127.0.0.1:${dns.port}`,
    RELAY_MX_PORT: String(destination.port),
    RELAY_RETRY_SCHEDULE: "1s",
    RELAY_SENDER_POLICY: "any",
  });

  async function send(node: FleetNode, rcpt_to: string[], subject: string) {
    const sent = await node.api("POST", "/v1/messages", {
      mail_from: "app@sender.test",
      rcpt_to,
      raw: `From: app@sender.test\r\nSubject: ${subject}\r\n\r\nsent through ${node.id}\r\n`,
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    return sent.json;
  }

  const delivered = (subject: string) =>
    destination.waitFor((all) => all.some((m) => m.data.includes(`Subject: ${subject}\r\n`)), 20_000)
      .then((all) => all.find((m) => m.data.includes(`Subject: ${subject}\r\n`))!);

  before(async () => {
    sqld = await startSqld();
    dns = await startDnsServer(defaultZone());
    destination = await startDestination();
    nodes.push(...await startFleet(fleetEnv));
  });

  after(async () => {
    for (const node of nodes) await node.relay.cleanup();
    await destination?.close();
    await dns?.close();
    await sqld?.close();
  });

  it("GET /v1/fleet on any node lists the three, up, each with its own address", async () => {
    for (const node of nodes) {
      const fleet = await waitUntil(
        () => node.api("GET", "/v1/fleet"),
        (r) => r.json.nodes?.length === 3,
        { what: `three nodes in ${node.id}'s registry`, timeout: SPREAD_MS },
      );
      assert.equal(fleet.json.node, node.id);
      assert.equal(fleet.json.shared, true);
      assert.equal(fleet.json.partitioned_since, null);
      assert.equal(fleet.json.outbox, 0);
      assert.deepEqual(
        fleet.json.nodes.map((n: any) => [n.id, n.status, n.source_ip, n.self]),
        nodes.map((n) => [n.id, "up", n.ip, n.id === node.id]),
      );
    }
  });

  it("a domain added through one node is on the others within seconds, its SPF record naming every node", async () => {
    const [a, b, c] = nodes;
    const added = await a!.api("POST", "/v1/domains", { domain: "fleet.test" });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    for (const other of [b!, c!]) {
      // The domain and its key are two writes: the key may come a pull later.
      const seen = await waitUntil(
        () => other.api("GET", "/v1/domains/fleet.test"),
        (r) => r.status === 200 && r.json.keys.length > 0,
        { what: `fleet.test and its key on ${other.id}`, timeout: SPREAD_MS },
      );
      assert.deepEqual(
        seen.json.keys.map((k: any) => k.selector),
        added.json.keys.map((k: any) => k.selector),
        "the same DKIM key",
      );
      // The node's own address first, then the registry's others.
      const ips = [other.ip, ...nodes.map((n) => n.ip).filter((ip) => ip !== other.ip)];
      const spf = seen.json.records.find((r: any) => r.purpose === "spf");
      assert.equal(spf.value, `v=spf1 ${ips.map((ip) => `ip4:${ip}`).join(" ")} ~all`);
    }
  });

  it("a user added through one node's CLI authenticates on another", async () => {
    const [a, , c] = nodes;
    const added = await runRelay(["users", "add", "fleet-user", "--domains", "sender.test"], {
      dataDir: a!.relay.dataDir,
      env: a!.env,
      input: "a long fleet password\n",
    });
    assert.equal(added.code, 0, added.stderr);
    const plain = Buffer.from("\0fleet-user\0a long fleet password").toString("base64");
    await waitUntil(
      async () => {
        const talk = await SmtpTalk.open(c!.relay.smtpPort, c!.ip);
        try {
          await talk.reply();
          await talk.command("EHLO client.test");
          await talk.startTls();
          await talk.command("EHLO client.test");
          return await talk.command(`AUTH PLAIN ${plain}`);
        } finally {
          talk.close();
        }
      },
      (reply) => reply.startsWith("235"),
      { what: `fleet-user authenticated on ${c!.id}`, timeout: SPREAD_MS },
    );
  });

  it("a suppression added through one node holds on the others within seconds", async () => {
    const [a, b, c] = nodes;
    const added = await c!.api("POST", "/v1/suppressions", { address: "gone@dest.test" });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    for (const other of [a!, b!]) {
      const listed = await waitUntil(
        () => other.api("GET", "/v1/suppressions?address=gone@dest.test"),
        (r) => r.json.suppressions.length === 1,
        { what: `the suppression on ${other.id}`, timeout: SPREAD_MS },
      );
      assert.equal(listed.json.suppressions[0].reason, "manual");
      const sent = await send(other, ["gone@dest.test"], `suppressed via ${other.id}`);
      assert.deepEqual(sent.recipients, [{ email: "gone@dest.test", status: "suppressed" }]);
    }
  });

  it("shaping rules put through one node apply on the others within seconds, and their removal too", async () => {
    const [a, b, c] = nodes;
    const put = await a!.api("PUT", "/v1/shaping", { domains: { "fleet-shaped.test": { connections: 2 } } });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    for (const other of [b!, c!]) {
      const shown = await waitUntil(
        () => other.api("GET", "/v1/shaping"),
        (r) => r.json.source.kind === "api",
        { what: `the rules on ${other.id}`, timeout: SPREAD_MS },
      );
      assert.equal(shown.json.rules.domains["fleet-shaped.test"].connections, 2);
      assert.equal(shown.json.source.updated_at, put.json.source.updated_at);
    }
    assert.equal((await b!.api("DELETE", "/v1/shaping")).status, 200);
    await waitUntil(
      () => c!.api("GET", "/v1/shaping"),
      (r) => r.json.source.kind === "shipped",
      { what: "the shipped rules back on c", timeout: SPREAD_MS },
    );
  });

  it("each node sends from its own address, and only its own queue", async () => {
    for (const node of nodes) await send(node, [`from-${node.id}@dest.test`], `own address ${node.id}`);
    for (const node of nodes) {
      const message = await delivered(`own address ${node.id}`);
      assert.equal(message.remoteAddress, node.ip, `${node.id}'s message came from ${message.remoteAddress}`);
      assert.deepEqual(message.recipients, [`from-${node.id}@dest.test`]);
    }
  });

  it("the queue and event APIs answer for another node (node=ID) or the whole fleet (node=all)", async () => {
    const [a, b] = nodes;
    // An API key is the fleet's: made through one node, it is good on all of them (each node's admin token here is its own).
    const created = await runRelay(["keys", "create", "--scope", "admin", "--json"], {
      dataDir: a!.relay.dataDir,
      env: a!.env,
    });
    assert.equal(created.code, 0, created.stderr);
    const token = JSON.parse(created.stdout).token as string;
    const asAdmin = async (node: FleetNode, path: string) => {
      const response = await fetch(node.relay.url(path), { headers: { authorization: `Bearer ${token}` } });
      return { response, json: await response.json() as any };
    };
    const sent = await send(b!, ["asked-across@dest.test"], "asked across the fleet");
    await delivered("asked across the fleet");
    await b!.waitForEvent((e) => e.type === "delivered" && e.message_id === sent.id);
    const { response, json: page } = await waitUntil(
      () => asAdmin(a!, `/v1/events?node=${b!.id}&message=${sent.id}`),
      (r) => r.response.status === 200,
      { what: "the key known to both nodes", timeout: SPREAD_MS },
    );
    assert.equal(response.headers.get("x-relay-node"), b!.id);
    assert.deepEqual(page.events.map((e: any) => e.type), ["received", "delivered"]);
    const here = await asAdmin(a!, `/v1/events?message=${sent.id}`);
    assert.deepEqual(here.json.events, [], "a's own log has none of b's mail");

    // The key reached b above; the third node's replica may take another sync to know it.
    const all = await waitUntil(
      () => asAdmin(a!, "/v1/queue?node=all"),
      (r) => r.response.status === 200 && r.json.nodes.every((n: any) => n.status === 200),
      { what: "every node knowing the key", timeout: SPREAD_MS },
    );
    assert.equal(all.response.status, 200, JSON.stringify(all.json));
    assert.deepEqual(all.json.nodes.map((n: any) => [n.node, n.status]), nodes.map((n) => [n.id, 200]));
    assert.ok(all.json.nodes.every((n: any) => Array.isArray(n.body.destinations)));
    const unknown = await asAdmin(a!, "/v1/queue?node=nowhere");
    assert.equal(unknown.response.status, 404);
  });

  it("with sqld stopped every node accepts and sends; the outbox drains once it is back", async () => {
    const [a, b, c] = nodes;
    await sqld.stop();
    try {
      // A hard bounce's suppression is a shared write: it waits in a's outbox.
      const bounced = await send(a!, ["nouser@dest.test"], "bounce while partitioned");
      await a!.waitForEvent((e) => e.type === "bounced" && e.message_id === bounced.id);
      const partitioned = await waitUntil(
        () => a!.api("GET", "/v1/fleet"),
        (r) => r.json.partitioned_since !== null && r.json.outbox === 1,
        { what: "a partitioned, one write in its outbox", timeout: SPREAD_MS },
      );
      assert.ok(Date.parse(partitioned.json.partitioned_since) > 0);
      const ready = await fetch(a!.relay.url("/readyz"));
      assert.equal(ready.status, 200);
      assert.equal(((await ready.json()) as any).partitioned_since, partitioned.json.partitioned_since);

      // Every node accepts and delivers meanwhile; one restarted during the partition starts from its replica.
      await c!.relay.stop();
      await restartFleetNode(c!);
      const offline = await c!.api("GET", "/v1/fleet");
      assert.notEqual(offline.json.partitioned_since, null, "c started without sqld");
      assert.equal(offline.json.nodes.length, 3, "c reads the registry from its replica");
      for (const node of nodes) {
        await send(node, [`partition-${node.id}@dest.test`], `partitioned ${node.id}`);
        assert.equal((await delivered(`partitioned ${node.id}`)).remoteAddress, node.ip);
      }
      // A change to the shared state through the API is refused, not half made.
      const refused = await b!.api("POST", "/v1/suppressions", { address: "later@dest.test" });
      assert.equal(refused.status, 503, JSON.stringify(refused.json));
    } finally {
      await sqld.start();
    }
    for (const node of nodes) {
      await waitUntil(
        () => node.api("GET", "/v1/fleet"),
        (r) => r.json.partitioned_since === null && r.json.outbox === 0,
        { what: `${node.id} back, its outbox empty`, timeout: 30_000 },
      );
    }
    const seen = await waitUntil(
      () => b!.api("GET", "/v1/suppressions?address=nouser@dest.test"),
      (r) => r.json.suppressions.length === 1,
      { what: "the bounce's suppression on b", timeout: SPREAD_MS },
    );
    assert.equal(seen.json.suppressions[0].reason, "hard-bounce");
    assert.equal(
      seen.json.suppressions[0].source.message_id,
      (await a!.events()).find((e: any) => e.type === "bounced").message_id,
    );
  });

  it("a node leaves the fleet: drained, stopped, removed from the registry and the SPF record", async () => {
    const [a, b, c] = nodes;
    const cli = (node: FleetNode, args: string[]) =>
      runRelay(args, { dataDir: node.relay.dataDir, env: node.env, timeoutMs: 60_000 });
    const statusOn = (node: FleetNode, id: string, status: string) =>
      waitUntil(
        () => node.api("GET", "/v1/fleet"),
        (r) => r.json.nodes?.some((n: any) => n.id === id && n.status === status),
        { what: `${id} ${status} on ${node.id}`, timeout: SPREAD_MS },
      );

    const drained = await cli(c!, ["drain"]);
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /^relay: node-3 is drained: its queue is empty; stop it now$/m);
    await statusOn(b!, c!.id, "draining");
    const running = await cli(a!, ["nodes", "remove", c!.id]);
    assert.equal(running.code, 1, running.stdout);
    assert.match(running.stderr, /node-3 is draining: drain it \(relay drain on that node\), stop it, then remove it/);

    await c!.relay.stop();
    await statusOn(b!, c!.id, "stopped");
    const removed = await cli(a!, ["nodes", "remove", c!.id]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, "relay: removed node-3 (stopped) from the registry: its IP leaves the SPF record\n");
    await waitUntil(
      () => b!.api("GET", "/v1/fleet"),
      (r) => r.json.nodes?.length === 2,
      { what: "node-3 gone from b's registry", timeout: SPREAD_MS },
    );
    const listed = await cli(a!, ["nodes", "list", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).map((n: any) => [n.id, n.status, n.source_ip]), [
      ["node-1", "up", a!.ip],
      ["node-2", "up", b!.ip],
    ]);
    const domain = await b!.api("GET", "/v1/domains/fleet.test");
    const spf = domain.json.records.find((r: any) => r.purpose === "spf");
    assert.equal(spf.value, `v=spf1 ip4:${b!.ip} ip4:${a!.ip} ~all`);
  });
});

describe("a node alone", () => {
  it("lists itself in GET /v1/fleet, from its own database, with no outbox", async () => {
    const relay = await startRelay({ env: { RELAY_NODE_ID: "alone", RELAY_SOURCE_IP: "127.0.0.1" } });
    try {
      const fleet = await waitUntil(
        () => relayApi(relay).api("GET", "/v1/fleet"),
        (r) => r.json.nodes?.length === 1,
        { what: "the node's first heartbeat", timeout: SPREAD_MS },
      );
      assert.deepEqual(
        { ...fleet.json, nodes: fleet.json.nodes.map((n: any) => [n.id, n.status, n.source_ip, n.self]) },
        {
          node: "alone",
          shared: false,
          partitioned_since: null,
          outbox: null,
          nodes: [["alone", "up", "127.0.0.1", true]],
        },
      );
    } finally {
      await relay.cleanup();
    }
  });
});

describe("fleet: sqld with JWT authentication", { skip: sqldMissing }, () => {
  let sqld: Sqld;
  before(async () => {
    sqld = await startSqld({ jwt: true });
  });
  after(async () => {
    await sqld?.close();
  });

  it("a node with the token sqld accepts joins; a wrong token stops the start with exit 1 and says why", async () => {
    const good = await startRelay({
      env: { RELAY_NODE_ID: "jwt-node", RELAY_SHARED_DB_URL: sqld.url, RELAY_SHARED_DB_TOKEN: sqld.token() },
    });
    try {
      const fleet = await relayApi(good).api("GET", "/v1/fleet");
      assert.equal(fleet.status, 200);
      assert.deepEqual(fleet.json.nodes.map((n: any) => n.id), ["jwt-node"]);
    } finally {
      await good.cleanup();
    }
    const foreignToken = signJwt(generateKeyPairSync("ed25519").privateKey);
    const wrong = await runRelay(["serve"], {
      env: {
        RELAY_SMTP_LISTEN: "127.0.0.1:0",
        RELAY_HTTP_LISTEN: "127.0.0.1:0",
        RELAY_SHARED_DB_URL: sqld.url,
        RELAY_SHARED_DB_TOKEN: foreignToken,
      },
      timeoutMs: 20_000,
    });
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.match(wrong.stderr, /the shared database at http:\/\/127\.0\.0\.1:\d+ refused RELAY_SHARED_DB_TOKEN/);
  });
});
