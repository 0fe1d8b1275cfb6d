// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * RELAY_DURABILITY=replicated (issue 17): three nodes on 127.0.0.2-4 and a
 * real sqld. A message is acknowledged only once sqld holds it; a node
 * killed with mail in its queue has that mail delivered by the others, no
 * recipient twice, and, restarted, sends none of it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type DnsServer, startDnsServer } from "../fixtures/dns-server.ts";
import { type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { type Sqld, sqldMissing, startSqld } from "../fixtures/sqld.ts";
import { type FleetNode, restartFleetNode, startFleet } from "../helpers/fleet-nodes.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { defaultZone } from "../helpers/world.ts";

/** RELAY_NODE_DEAD_AFTER for the test: short, so that adoption comes within seconds. */
const DEAD_AFTER = "3s";

describe("fleet: replicated durability", { skip: sqldMissing }, () => {
  let sqld: Sqld;
  let dns: DnsServer;
  let destination: Destination;
  /** While set, the destination defers every later-* recipient. */
  let deferLater = false;
  const nodes: FleetNode[] = [];

  const sentTo = (address: string) => destination.messages.filter((m) => m.recipients.includes(address));

  before(async () => {
    sqld = await startSqld();
    dns = await startDnsServer(defaultZone());
    destination = await startDestination({
      rcptReply: (to) => (deferLater && to.startsWith("later-") ? "451 4.3.2 try again later" : undefined),
    });
    nodes.push(
      ...await startFleet(() => ({
        RELAY_SHARED_DB_URL: sqld.url,
        RELAY_DURABILITY: "replicated",
        RELAY_NODE_DEAD_AFTER: DEAD_AFTER,
        RELAY_DNS_SERVERS: `127.0.0.1:${dns.port}`,
        RELAY_MX_PORT: String(destination.port),
        // A deferred recipient is not tried again during the test: only adoption delivers it.
        RELAY_RETRY_SCHEDULE: "1h",
        RELAY_SENDER_POLICY: "any",
        RELAY_SUPPRESS_BOUNCE_CATEGORIES: "none",
      })),
    );
  });

  after(async () => {
    for (const node of nodes) await node.relay.cleanup();
    await destination?.close();
    await dns?.close();
    await sqld?.close();
  });

  it("acknowledges a message only once sqld holds it too: with sqld stopped, SMTP 451 and HTTP 503", async () => {
    const [a] = nodes;
    const raw = "From: app@sender.test\r\nSubject: while sqld is away\r\n\r\nx\r\n";
    await sqld.stop();
    try {
      const http = await a!.api("POST", "/v1/messages", {
        mail_from: "app@sender.test",
        rcpt_to: ["x@dest.test"],
        raw,
      });
      assert.equal(http.status, 503, JSON.stringify(http.json));
      const smtp = await sendMail(a!.relay.smtpPort, "app@sender.test", ["y@dest.test"], raw, a!.ip);
      assert.match(smtp.at(-2)!, /^451 /, smtp.join("\n"));
    } finally {
      await sqld.start();
    }
    const accepted = await waitUntil(
      () => a!.api("POST", "/v1/messages", { mail_from: "app@sender.test", rcpt_to: ["z@dest.test"], raw }),
      (r) => r.status === 202,
      { what: "an acceptance once sqld is back", timeout: 20_000 },
    );
    await destination.waitFor((all) => all.some((m) => m.recipients.includes("z@dest.test")), 20_000);
    assert.deepEqual(sentTo("x@dest.test"), [], "what was refused is not sent");
    assert.deepEqual(sentTo("y@dest.test"), [], "what was refused is not sent");
    assert.ok(accepted.json.id);
  });

  it("kill -9 of a node with queued mail: the others deliver it from their addresses, no recipient twice; restarted, it sends none", async () => {
    const [a, b, c] = nodes;
    deferLater = true;
    const count = 10;
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const sent = await a!.api("POST", "/v1/messages", {
        mail_from: "app@sender.test",
        rcpt_to: [`now-${i}@dest.test`, `later-${i}@dest.test`],
        raw: `From: app@sender.test\r\nSubject: replicated ${i}\r\n\r\nx\r\n`,
      });
      assert.equal(sent.status, 202, JSON.stringify(sent.json));
      ids.push(sent.json.id);
    }
    // a delivered every now-* and deferred every later-* (its retry is an hour away).
    await waitUntil(
      () => a!.events(),
      (events) =>
        ids.every((id) =>
          events.some((e: any) => e.message_id === id && e.type === "delivered") &&
          events.some((e: any) => e.message_id === id && e.type === "deferred")
        ),
      { what: "a's first attempts", timeout: 20_000 },
    );
    // An operator cancels one deferred recipient on a: no adopter sends it either.
    const cancelled = await a!.api("DELETE", `/v1/messages/${ids[0]}/recipients/later-0@dest.test`);
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.json));
    const killedAt = Date.now();
    await a!.relay.kill9();
    deferLater = false;

    const later = Array.from({ length: count }, (_, i) => `later-${i}@dest.test`).slice(1);
    await destination.waitFor(() => later.every((address) => sentTo(address).length > 0), 30_000);
    for (const address of later) {
      const copies = sentTo(address);
      assert.equal(copies.length, 1, `${address} delivered once`);
      assert.ok([b!.ip, c!.ip].includes(copies[0]!.remoteAddress), `${address} came from ${copies[0]!.remoteAddress}`);
      assert.ok(copies[0]!.receivedAt >= killedAt);
    }
    for (let i = 0; i < count; i++) assert.equal(sentTo(`now-${i}@dest.test`).length, 1, `now-${i} delivered once`);
    const adoptedEvents = [...await b!.events(), ...await c!.events()].filter((e: any) =>
      e.type === "received" && ids.includes(e.message_id)
    );
    assert.equal(adoptedEvents.length, count - 1, "each adopted message queued once, its done recipients left out");
    assert.ok(adoptedEvents.every((e: any) => e.adopted_from === a!.id && e.recipient.startsWith("later-")));

    // a restarted: it drops what was adopted, and sends nothing of it.
    const before = destination.messages.length;
    await restartFleetNode(a!);
    const views = await waitUntil(
      () => Promise.all(ids.map((id) => a!.api("GET", `/v1/messages/${id}`))),
      (all) => all.every((v) => v.json.recipients.every((r: any) => r.state !== "deferred" && r.state !== "queued")),
      { what: "a's copies of the adopted mail cancelled", timeout: 20_000 },
    );
    for (const view of views) {
      assert.deepEqual(view.json.recipients.map((r: any) => r.state).sort(), ["cancelled", "delivered"]);
    }
    assert.deepEqual(sentTo("later-0@dest.test"), [], "the cancelled recipient was sent by nobody");
    // A new message through a is its own again: delivered from its address.
    const fresh = await a!.api("POST", "/v1/messages", {
      mail_from: "app@sender.test",
      rcpt_to: ["after-restart@dest.test"],
      raw: "From: app@sender.test\r\nSubject: after restart\r\n\r\nx\r\n",
    });
    assert.equal(fresh.status, 202, JSON.stringify(fresh.json));
    await destination.waitFor(() => sentTo("after-restart@dest.test").length === 1, 20_000);
    assert.equal(sentTo("after-restart@dest.test")[0]!.remoteAddress, a!.ip);
    const sinceRestart = destination.messages.slice(before).filter((m) => m.remoteAddress === a!.ip);
    assert.deepEqual(sinceRestart.map((m) => m.recipients), [["after-restart@dest.test"]]);
  });

  it("kill -9 in the middle of a burst: every acknowledged message is delivered; the copies sent twice are at most those in flight", async () => {
    const [a, b] = nodes;
    const total = 200;
    const acknowledged: string[] = [];
    let killed = false;
    const submit = async (i: number) => {
      const address = `burst-${i}@dest.test`;
      const sent = await a!.api("POST", "/v1/messages", {
        mail_from: "app@sender.test",
        rcpt_to: [address],
        raw: `From: app@sender.test\r\nSubject: burst ${i}\r\n\r\nx\r\n`,
      }).catch(() => undefined);
      if (sent?.status === 202) acknowledged.push(address);
      if (!killed && acknowledged.length >= total / 2) {
        killed = true;
        await a!.relay.kill9();
      }
    };
    for (let i = 0; i < total; i += 10) {
      if (killed) break;
      await Promise.all(Array.from({ length: 10 }, (_, j) => submit(i + j)));
    }
    assert.ok(killed && acknowledged.length >= total / 2, `${acknowledged.length} acknowledged before the kill`);

    await destination.waitFor(() => acknowledged.every((address) => sentTo(address).length > 0), 60_000);
    const twice = acknowledged.filter((address) => sentTo(address).length > 1);
    // A copy is sent twice only when a's delivery was acknowledged by the destination and a died before its done mark.
    assert.ok(twice.length <= 20, `${twice.length} of ${acknowledged.length} delivered twice: ${twice.join(", ")}`);
    console.log(`[fleet-replicated] burst: ${acknowledged.length} acknowledged, all delivered, ${twice.length} twice`);

    await restartFleetNode(a!);
    assert.equal((await b!.api("GET", "/v1/fleet")).status, 200);
  });
});
