import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startDestination } from "../fixtures/smtp-destination.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";

const worlds: World[] = [];
async function world(options: Parameters<typeof startWorld>[0]): Promise<World> {
  const w = await startWorld(options);
  worlds.push(w);
  return w;
}

describe("delivery engine: pools, MX rollup, limits, TLS fallback, per-destination backoff", () => {
  after(async () => {
    for (const w of worlds) await w.close();
  });

  it("reuses connections: many messages to one destination travel over few connections", async () => {
    const w = await world({ env: { RELAY_DESTINATION_MAX_CONNECTIONS: "2" } });
    const sends = [];
    for (let i = 0; i < 30; i++) {
      sends.push(
        w.api("POST", "/v1/messages", {
          mail_from: "a@sender.test",
          rcpt_to: [`r${i}@dest.test`],
          raw: `Subject: pooled ${i}\r\n\r\nx\r\n`,
        }),
      );
    }
    for (const s of await Promise.all(sends)) assert.equal(s.status, 202);
    await w.destination.waitFor((m) => m.filter((r) => r.data.includes("Subject: pooled")).length === 30);
    assert.ok(w.destination.connections <= 4, `30 messages used ${w.destination.connections} connections`);
    const busiest = Math.max(...w.destination.sessions.map((s) => s.commands.filter((c) => /^MAIL /i.test(c)).length));
    assert.ok(busiest >= 5, "one connection carried several messages");
  });

  it("MX rollup: two domains at the same MX site share one transaction", async () => {
    const w = await world({
      zone: {
        "one.test": { MX: [{ preference: 10, exchange: "mx.shared.test" }] },
        "two.test": { MX: [{ preference: 10, exchange: "mx.shared.test" }] },
        "mx.shared.test": { A: ["127.0.0.1"] },
      },
    });
    await sendMail(w.relay.smtpPort, "a@sender.test", ["x@one.test", "y@two.test"], "Subject: rolled up\r\n\r\nx\r\n");
    await w.destination.waitFor((m) => m.some((r) => r.data.includes("rolled up")));
    const message = w.destination.messages.find((r) => r.data.includes("rolled up"))!;
    assert.deepEqual([...message.recipients].sort(), ["x@one.test", "y@two.test"]);
  });

  it("452 too many recipients: the rest go in the next transaction", async () => {
    const w = await world({ destination: { maxRecipients: 2 } });
    const rcpts = ["a1@dest.test", "a2@dest.test", "a3@dest.test", "a4@dest.test", "a5@dest.test"];
    await sendMail(w.relay.smtpPort, "a@sender.test", rcpts, "Subject: split transaction\r\n\r\nx\r\n");
    await w.destination.waitFor((m) =>
      m.filter((r) => r.data.includes("split transaction")).flatMap((r) => r.recipients).length === 5
    );
    const parts = w.destination.messages.filter((r) => r.data.includes("split transaction"));
    assert.ok(parts.length >= 3, "at most two recipients per transaction");
    assert.ok(parts.every((p) => p.recipients.length <= 2));
    // The destination has the mail before the relay records the outcome: wait for each event.
    for (const r of rcpts) await w.waitForEvent((e) => e.type === "delivered" && e.recipient === r);
    const others = (await w.events()).filter((e) =>
      e.type !== "delivered" && e.type !== "received" && rcpts.includes(e.recipient)
    );
    assert.deepEqual(others, [], "every recipient delivered, none deferred or lost");
  });

  it("a broken STARTTLS falls back to plaintext and delivers", async () => {
    const w = await world({ destination: { brokenStarttls: true } });
    await sendMail(w.relay.smtpPort, "a@sender.test", ["tls@dest.test"], "Subject: tls fallback\r\n\r\nx\r\n");
    await w.destination.waitFor((m) => m.some((r) => r.data.includes("tls fallback")));
    const message = w.destination.messages.find((r) => r.data.includes("tls fallback"))!;
    assert.equal(message.tls, false);
  });

  it("a host that greets with 421 defers the destination once, not every message separately", async () => {
    const refusing = await startDestination({ greetingCode: 421 });
    try {
      const w = await world({
        env: { RELAY_ROUTES: `down.test=127.0.0.1:${refusing.port}`, RELAY_RETRY_SCHEDULE: "1h" },
      });
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        const sent = await w.api("POST", "/v1/messages", {
          mail_from: "a@sender.test",
          rcpt_to: [`d${i}@down.test`],
          raw: "Subject: down\r\n\r\nx\r\n",
        });
        ids.push(sent.json.id);
      }
      for (const id of ids) await w.waitForEvent((e) => e.type === "deferred" && e.message_id === id);
      assert.ok(refusing.connections <= 3, `10 messages to a refusing host opened ${refusing.connections} connections`);
      const deferred = (await w.events()).filter((e) => e.type === "deferred" && ids.includes(e.message_id));
      assert.equal(deferred.length, 10, "each recipient still gets its deferred event");
      assert.match(deferred[0].reply, /421/);
    } finally {
      await refusing.close();
    }
  });

  it("a host that never answers times out and the message is deferred, not lost", async () => {
    const silent = await startDestination({ silent: true });
    try {
      const w = await world({
        env: {
          RELAY_ROUTES: `silent.test=127.0.0.1:${silent.port}`,
          RELAY_COMMAND_TIMEOUT: "1s",
          RELAY_RETRY_SCHEDULE: "1h",
        },
      });
      const sent = await w.api("POST", "/v1/messages", {
        mail_from: "a@sender.test",
        rcpt_to: ["s@silent.test"],
        raw: "Subject: silent\r\n\r\nx\r\n",
      });
      const deferred = await w.waitForEvent((e) => e.type === "deferred" && e.message_id === sent.json.id);
      assert.equal(deferred.category, "no-answer-from-host");
      const view = await w.api("GET", `/v1/messages/${sent.json.id}`);
      assert.equal(view.json.recipients[0].state, "deferred");
    } finally {
      await silent.close();
    }
  });
});
