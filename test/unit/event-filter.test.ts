import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { NewMessage } from "../../src/queue/records.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-event-filter-");

const T0 = 1_700_000_000_000;

async function fresh() {
  const { database } = await temporaryDatabase(T0);
  const clock = new FakeClock(T0);
  return { database, clock, store: new QueueStore(database, undefined, clock, "node-a") };
}
const body = new TextEncoder().encode("Subject: t\r\n\r\nhello\r\n");
const msg = (mailFrom: string, to: string[], tags?: string[]): NewMessage => ({
  mailFrom,
  recipients: to.map((address) => ({ address, domain: address.split("@")[1]! })),
  body,
  source: "http",
  ...(tags ? { tags } : {}),
});

describe("event filters", () => {
  it("select by type, message, recipient, tag, sender domain and time, with cursor paging", async () => {
    const { store, clock, database } = await fresh();
    const a = await store.enqueue(msg("news@Own.Example", ["x@d.example", "y@d.example"], ["welcome", "eu"]));
    clock.advance(1000);
    const b = await store.enqueue(msg("ops@other.example", ["x@d.example"], ["eu"]));
    const c = await store.enqueue(msg("a%b@own_example.test", ["z@d.example"]));
    await database.client.execute({
      sql: "INSERT INTO events (at, type, message_id, recipient, data) VALUES (?, 'domain_changed', NULL, NULL, ?)",
      args: [clock.now(), JSON.stringify({ domain: "own.example" })],
    });
    const list = async (filter: Parameters<QueueStore["events"]["listEvents"]>[2], after = 0, limit = 100) =>
      (await store.events.listEvents(after, limit, filter)).map((e) =>
        `${e.type}:${e.messageId ?? "-"}:${e.recipient ?? "-"}`
      );

    assert.deepEqual(await list({ messageId: b }), [`received:${b}:x@d.example`]);
    assert.deepEqual(await list({ recipient: "x@d.example" }), [
      `received:${a}:x@d.example`,
      `received:${b}:x@d.example`,
    ]);
    assert.deepEqual(await list({ tag: "welcome" }), [`received:${a}:x@d.example`, `received:${a}:y@d.example`]);
    assert.equal((await list({ tag: "eu" })).length, 3);
    assert.deepEqual(await list({ types: ["domain_changed"] }), ["domain_changed:-:-"]);
    assert.equal((await list({ types: ["received", "domain_changed"] })).length, 5);
    assert.equal((await list({ since: T0 + 1000 })).length, 3);
    assert.equal((await list({ until: T0 + 1000 })).length, 2);

    // An API key limited to own.example: its messages (the domain in any case) and its domain's changes only.
    assert.deepEqual(await list({ senderDomains: ["own.example"] }), [
      `received:${a}:x@d.example`,
      `received:${a}:y@d.example`,
      "domain_changed:-:-",
    ]);
    // LIKE's wildcards in a domain are literal: own_example.test is not ownXexample.test.
    assert.deepEqual(await list({ senderDomains: ["own_example.test"] }), [`received:${c}:z@d.example`]);
    assert.deepEqual(await list({ senderDomains: ["ownxexample.test"] }), []);
    assert.deepEqual(await list({ senderDomains: [] }), []);

    // Paging: the cursor is the last id of the page, and a filter holds across pages.
    const first = await store.events.listEvents(0, 1, { tag: "eu" });
    const rest = await store.events.listEvents(first[0]!.id, 10, { tag: "eu" });
    assert.deepEqual([...first, ...rest].map((e) => e.messageId), [a, a, b]);
  });

  it("reads message, recipient and type filters from indexes", async () => {
    const { database } = await fresh();
    const plan = async (where: string) =>
      (await database.client.execute(
        `EXPLAIN QUERY PLAN SELECT * FROM events WHERE id > 0 AND ${where} ORDER BY id LIMIT 10`,
      ))
        .rows.map((r) => String(r.detail)).join("; ");
    assert.match(await plan("message_id = 'm'"), /USING INDEX events_message/);
    assert.match(await plan("recipient = 'r@x'"), /USING INDEX events_recipient/);
    assert.match(await plan("type = 'bounced'"), /USING INDEX events_type/);
  });
});
