import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { QueueStore } from "../../src/queue/store.ts";
import { WebhookStore } from "../../src/queue/webhooks.ts";
import { RejectionLog } from "../../src/queue/rejection-log.ts";
import { DestinationEventStore } from "../../src/queue/destination-events.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-webhook-retention-");

const T0 = 1_700_000_000_000;

describe("RELAY_RETENTION and webhooks", () => {
  it("purges no message whose events a webhook endpoint has not taken yet", async () => {
    const { database } = await temporaryDatabase(T0);
    const clock = new FakeClock(T0);
    const store = new QueueStore(database, undefined, clock, "node-a");
    const webhooks = new WebhookStore(database, clock);
    const behind = await webhooks.create({ id: "wh_1", url: "https://a.test/", eventTypes: ["*"], secret: "whsec_x" });
    await webhooks.create({ id: "wh_2", url: "https://b.test/", eventTypes: ["*"], secret: "whsec_y" });

    const id = await store.enqueue({
      mailFrom: "s@src.example",
      recipients: [{ address: "a@d.example", domain: "d.example" }],
      body: new TextEncoder().encode("Subject: t\r\n\r\nhi\r\n"),
      source: "smtp",
    });
    const [claim] = await store.claimDue(1, 60_000);
    await store.record([{
      recipientId: claim!.recipientId,
      messageId: id,
      address: claim!.address,
      state: "delivered",
      reply: "250 ok",
      event: {},
    }]);
    await clock.advance(10);
    const last = await webhooks.lastEventId();
    await webhooks.advance((await webhooks.get("wh_2"))!, last, true);

    assert.equal(await store.retention.purgeFinished(clock.now(), 100), 0, "wh_1 has not taken its events");
    assert.equal((await store.messageView(id))?.events.length, 2);
    await webhooks.advance(behind, last, true);
    assert.equal(await store.retention.purgeFinished(clock.now(), 100), 1, "every endpoint has taken them");
  });
});

describe("RELAY_RETENTION: events of no message", () => {
  it("refusals and a destination's state changes go once past the retention and taken by every webhook", async () => {
    const { database } = await temporaryDatabase(T0);
    const clock = new FakeClock(T0);
    const store = new QueueStore(database, undefined, clock, "node-a");
    const webhooks = new WebhookStore(database, clock);
    const endpoint = await webhooks.create({ id: "wh_1", url: "https://a.test/", eventTypes: ["*"], secret: "x" });
    const rejections = new RejectionLog(database, clock);
    const destinations = new DestinationEventStore(database);
    const kept = await store.enqueue({
      mailFrom: "s@src.example",
      recipients: [{ address: "a@d.example", domain: "d.example" }],
      body: new TextEncoder().encode("Subject: t\r\n\r\nhi\r\n"),
      source: "smtp",
    });
    await rejections.record("refused-1", ["a@d.example", "b@d.example"], { reply: "554 5.7.1 spam" });
    await destinations.append({
      type: "destination_suspended",
      at: clock.now(),
      data: { destination: "mx.d.example" },
    });
    await clock.advance(60_000);
    await rejections.record("refused-2", ["c@d.example"], { reply: "554 5.7.1 spam" });
    const types = async () =>
      (await database.client.execute("SELECT type, message_id FROM events ORDER BY id")).rows.map((r) =>
        `${r.type} ${r.message_id ?? "-"}`
      );
    const before = await types();

    assert.equal(await store.retention.purgeUnattached(T0 + 1, 100), 0, "the endpoint has taken none of them");
    await webhooks.advance(endpoint, await webhooks.lastEventId(), true);
    assert.equal(await store.retention.purgeUnattached(T0 + 1, 100), 3);
    assert.deepEqual(await types(), before.filter((t) => t.startsWith(`received ${kept}`) || t.endsWith("refused-2")));
  });
});
