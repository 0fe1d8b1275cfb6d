/**
 * The dashboard's message search (src/queue/message-search.ts) over a real
 * queue: by message id, by address (recipient or envelope sender, in any
 * case), by @domain; newest first, up to a limit.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MessageSearch } from "../../src/queue/message-search.ts";
import { BodySpool } from "../../src/queue/spool.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-search-");

const T0 = 1_700_000_000_000;

async function queue() {
  const { database, dir } = await temporaryDatabase(T0);
  const clock = new FakeClock(T0);
  const store = new QueueStore(database, await BodySpool.open(join(dir, "spool")), clock, "node-a");
  const send = async (mailFrom: string, to: string[]) => {
    await clock.advance(1000);
    return store.enqueue({
      mailFrom,
      recipients: to.map((address) => ({ address, domain: address.split("@")[1]!.toLowerCase() })),
      body: new TextEncoder().encode("Subject: t\r\n\r\nhello\r\n"),
      source: "http",
    });
  };
  return { search: new MessageSearch(database), send };
}

describe("MessageSearch", () => {
  it("finds a message by its id, in either case, with each of its recipients", async () => {
    const { search, send } = await queue();
    const id = await send("a@src.example", ["x@one.example", "y@two.example"]);
    await send("a@src.example", ["z@one.example"]);
    for (const text of [id, id.toLowerCase(), ` ${id} `]) {
      const hits = await search.search(text, 50);
      assert.deepEqual(hits.map((h) => [h.messageId, h.address, h.state]), [
        [id, "x@one.example", "queued"],
        [id, "y@two.example", "queued"],
      ]);
    }
  });

  it("finds a recipient or an envelope sender in any case, newest first, up to the limit", async () => {
    const { search, send } = await queue();
    const first = await send("Boss@src.example", ["Bob@one.example"]);
    const second = await send("a@src.example", ["bob@one.example", "carol@one.example"]);
    const third = await send("a@src.example", ["dave@two.example"]);
    assert.deepEqual((await search.search("BOB@one.example", 50)).map((h) => h.messageId), [second, first]);
    assert.deepEqual((await search.search("bob@one.example", 1)).map((h) => h.messageId), [second]);
    assert.deepEqual((await search.search("boss@SRC.example", 50)).map((h) => [h.messageId, h.mailFrom]), [
      [first, "Boss@src.example"],
    ]);
    assert.deepEqual((await search.search("a@src.example", 50)).map((h) => [h.messageId, h.address]), [
      [third, "dave@two.example"],
      [second, "carol@one.example"],
      [second, "bob@one.example"],
    ]);
  });

  it("finds the recipients at a domain with @domain; nothing for an empty query or no match", async () => {
    const { search, send } = await queue();
    const one = await send("a@src.example", ["x@one.example", "y@two.example"]);
    assert.deepEqual((await search.search("@ONE.example", 50)).map((h) => [h.messageId, h.address]), [
      [one, "x@one.example"],
    ]);
    assert.deepEqual(await search.search("  ", 50), []);
    assert.deepEqual(await search.search("nobody@one.example", 50), []);
    assert.deepEqual(await search.search("@three.example", 50), []);
  });
});
