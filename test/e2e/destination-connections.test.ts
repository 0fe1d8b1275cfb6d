/**
 * Receivers count connections (and the big providers rate-limit them), so the
 * relay opens a connection to a destination only for work that no open or
 * opening connection will take. Counted at the destination.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startWorld, type World } from "../helpers/world.ts";

const worlds: World[] = [];
async function world(options: Parameters<typeof startWorld>[0]): Promise<World> {
  const w = await startWorld(options);
  worlds.push(w);
  return w;
}

describe("connections to a destination: one for each piece of work, no spares", () => {
  after(async () => {
    for (const w of worlds) await w.close();
  });

  it("a lone message opens exactly one connection", async () => {
    const w = await world({ env: { RELAY_DESTINATION_IDLE_TIMEOUT: "200ms" } });
    const sent = await w.api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["lone@dest.test"],
      raw: "Subject: lone\r\n\r\nx\r\n",
    });
    assert.equal(sent.status, 202);
    await w.waitForEvent((e) => e.type === "delivered" && e.message_id === sent.json.id);
    await w.destination.waitUntilIdle();
    assert.equal(w.destination.connections, 1, `one message opened ${w.destination.connections} connections`);
  });

  it("work queued at once opens no more connections than there is work", async () => {
    // With an aligned bounce domain each recipient has its own return path (VERP), so one message
    // with five recipients is five pieces of work for the destination, queued in one go. The
    // destination is slow, so no connection is free again before all five are under way.
    const w = await world({
      env: { RELAY_BOUNCE_DOMAIN: "bounces.sender.test", RELAY_DESTINATION_IDLE_TIMEOUT: "200ms" },
      destination: { dataReplyDelayMs: 500 },
    });
    const to = ["v1@dest.test", "v2@dest.test", "v3@dest.test", "v4@dest.test", "v5@dest.test"];
    const sent = await w.api("POST", "/v1/messages", { from: "a@sender.test", to, subject: "five at once", text: "x" });
    assert.equal(sent.status, 202, JSON.stringify(sent.json));
    const got = await w.destination.waitFor((m) =>
      m.filter((r) => r.data.includes("Subject: five at once")).length === 5
    );
    assert.equal(new Set(got.map((r) => r.mailFrom)).size, 5, "five transactions, one per return path");
    await w.destination.waitUntilIdle();
    assert.ok(w.destination.connections <= 5, `five pieces of work opened ${w.destination.connections} connections`);
  });

  it("never more than RELAY_DESTINATION_MAX_CONNECTIONS, at once or in all, while the pool is busy", async () => {
    const w = await world({ env: { RELAY_DESTINATION_MAX_CONNECTIONS: "3" } });
    const sends = [];
    for (let i = 0; i < 40; i++) {
      sends.push(
        w.api("POST", "/v1/messages", {
          mail_from: "a@sender.test",
          rcpt_to: [`m${i}@dest.test`],
          raw: `Subject: limited ${i}\r\n\r\nx\r\n`,
        }),
      );
    }
    for (const s of await Promise.all(sends)) assert.equal(s.status, 202);
    await w.destination.waitFor((m) => m.filter((r) => r.data.includes("Subject: limited")).length === 40);
    assert.ok(w.destination.peakConnections <= 3, `${w.destination.peakConnections} connections open at once`);
    assert.ok(w.destination.connections <= 3, `40 messages opened ${w.destination.connections} connections`);
  });
});
