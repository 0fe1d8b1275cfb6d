import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Claim, NewMessage } from "../../src/queue/records.ts";
import { QueueStore } from "../../src/queue/store.ts";
import {
  formatScope,
  LOOKUP,
  normalizeSuppressedAddress,
  parseScope,
  SuppressionStore,
} from "../../src/queue/suppressions.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-suppress-");

const T0 = 1_700_000_000_000;

async function fresh(suppressBounceCategories: string[] = []) {
  const { database } = await temporaryDatabase(T0);
  const clock = new FakeClock(T0);
  return {
    database,
    clock,
    list: new SuppressionStore(database, clock),
    queue: new QueueStore(database, undefined, clock, "node-a", suppressBounceCategories),
  };
}
describe("SuppressionStore", () => {
  it("compares addresses whole in lower case, the domain as its A-label", async () => {
    assert.equal(normalizeSuppressedAddress(" Bob.Smith@Example.COM "), "bob.smith@example.com");
    assert.equal(normalizeSuppressedAddress("a@Bücher.example"), "a@xn--bcher-kva.example");
    const { list } = await fresh();
    await list.add({ address: "Bob@Example.com", scope: { kind: "global" }, reason: "manual" });
    const found = await list.lookup(["BOB@example.COM", "alice@example.com"], {});
    assert.deepEqual([...found.keys()], ["BOB@example.COM"]);
    assert.equal(found.get("BOB@example.COM")!.address, "bob@example.com");
  });

  it("applies global entries to all, scoped ones only to their principal or sending domain", async () => {
    const { list } = await fresh();
    await list.add({ address: "p@x.test", scope: { kind: "principal", id: "key-1" }, reason: "unsubscribe" });
    await list.add({ address: "d@x.test", scope: { kind: "domain", domain: "News.Example" }, reason: "complaint" });
    await list.add({ address: "g@x.test", scope: { kind: "global" }, reason: "hard-bounce" });
    const all = ["p@x.test", "d@x.test", "g@x.test"];
    const keys = async (context: { principal?: string; domain?: string }) =>
      [...(await list.lookup(all, context)).keys()].sort();
    assert.deepEqual(await keys({}), ["g@x.test"]);
    assert.deepEqual(await keys({ principal: "key-1" }), ["g@x.test", "p@x.test"]);
    assert.deepEqual(await keys({ principal: "key-2", domain: "news.example" }), ["d@x.test", "g@x.test"]);
  });

  it("an expired entry suppresses nothing", async () => {
    const { list, clock } = await fresh();
    await list.add({ address: "t@x.test", scope: { kind: "global" }, reason: "manual", expiresAt: T0 + 1000 });
    assert.equal((await list.lookup(["t@x.test"], {})).size, 1);
    await clock.advance(1000);
    assert.equal((await list.lookup(["t@x.test"], {})).size, 0);
  });

  it("a second add renews reason, source and expiry, and keeps when the entry was first made", async () => {
    const { list, clock } = await fresh();
    await list.add({ address: "r@x.test", scope: { kind: "global" }, reason: "manual", expiresAt: T0 + 10 });
    await clock.advance(5000);
    await list.add({
      address: "R@x.test",
      scope: { kind: "global" },
      reason: "hard-bounce",
      source: { event: "bounced", messageId: "M1" },
    });
    const { entries } = await list.list({ limit: 10 });
    assert.deepEqual(entries, [{
      address: "r@x.test",
      scope: { kind: "global" },
      reason: "hard-bounce",
      source: { event: "bounced", messageId: "M1" },
      createdAt: T0,
    }]);
  });

  it("lists in pages by cursor, and removes one scope or all", async () => {
    const { list } = await fresh();
    for (let i = 0; i < 25; i++) {
      await list.add({ address: `u${String(i).padStart(2, "0")}@x.test`, scope: { kind: "global" }, reason: "import" });
    }
    await list.add({ address: "u00@x.test", scope: { kind: "principal", id: "k" }, reason: "manual" });
    const seen: string[] = [];
    let page = await list.list({ limit: 10 });
    seen.push(...page.entries.map((e) => `${e.address} ${formatScope(e.scope)}`));
    while (page.next) {
      page = await list.list({ after: page.next, limit: 10 });
      seen.push(...page.entries.map((e) => `${e.address} ${formatScope(e.scope)}`));
    }
    assert.equal(seen.length, 26);
    assert.equal(new Set(seen).size, 26);
    assert.deepEqual(seen.slice(0, 2), ["u00@x.test global", "u00@x.test principal:k"]);
    assert.equal(await list.remove("U00@x.test", { kind: "principal", id: "k" }), 1);
    assert.equal(await list.remove("u01@x.test"), 1);
    assert.equal(await list.remove("nobody@x.test"), 0);
    let count = 0;
    for await (const _ of list.all(7)) count++;
    assert.equal(count, 24);
  });

  it("reads scopes as written", () => {
    for (const text of ["global", "principal:key-1", "domain:news.example"]) {
      assert.equal(formatScope(parseScope(text)!), text);
    }
    for (const bad of ["", "principal:", "team:x", "globalx"]) assert.equal(parseScope(bad), undefined, bad);
  });

  it("looks a message's recipients up on the primary key, not by scanning the list", async () => {
    const { database } = await fresh();
    const plan = await database.client.execute({
      sql: `EXPLAIN QUERY PLAN ${LOOKUP}`,
      args: ['["a@x.test","b@x.test"]', T0, "key-1", "x.test"],
    });
    const details = plan.rows.map((r) => String(r.detail));
    assert.ok(
      details.some((d) => /SEARCH suppressions USING INDEX sqlite_autoindex_suppressions_1 \(address=\?\)/.test(d)),
      details.join("\n"),
    );
    assert.ok(!details.some((d) => /SCAN suppressions/.test(d)), details.join("\n"));
  });
});

describe("QueueStore.record with RELAY_SUPPRESS_BOUNCE_CATEGORIES", () => {
  const message = (to: string[]): NewMessage => ({
    mailFrom: "s@src.test",
    recipients: to.map((address) => ({ address, domain: address.split("@")[1]! })),
    body: new TextEncoder().encode("Subject: t\r\n\r\nhi\r\n"),
    source: "http",
  });
  const bounced = (c: Claim, category: string) => ({
    recipientId: c.recipientId,
    messageId: c.messageId,
    address: c.address,
    state: "bounced" as const,
    reply: "550 5.1.1 no",
    event: { category, bounce_type: "hard" },
  });

  it("suppresses the address of a hard bounce of a listed category globally, in the same write", async () => {
    const { queue, list } = await fresh(["bad-mailbox", "bad-domain"]);
    const id = await queue.enqueue(message(["Gone@d.test", "policy@d.test"]));
    const claims = await queue.claimDue(10, 60_000);
    const gone = claims.find((c) => c.address === "Gone@d.test")!;
    const policy = claims.find((c) => c.address === "policy@d.test")!;
    await queue.record([bounced(gone, "bad-mailbox"), bounced(policy, "policy-related")]);
    const { entries } = await list.list({ limit: 10 });
    assert.deepEqual(entries, [{
      address: "gone@d.test",
      scope: { kind: "global" },
      reason: "hard-bounce",
      source: { event: "bounced", messageId: id },
      createdAt: T0,
    }]);
  });

  it("adds nothing when no category is configured, nor for a soft failure", async () => {
    const { queue, list } = await fresh([]);
    await queue.enqueue(message(["a@d.test"]));
    const [claim] = await queue.claimDue(10, 60_000);
    await queue.record([bounced(claim!, "bad-mailbox")]);
    const other = await fresh(["bad-mailbox"]);
    await other.queue.enqueue(message(["b@d.test"]));
    const [soft] = await other.queue.claimDue(10, 60_000);
    await other.queue.record([{ ...bounced(soft!, "bad-mailbox"), state: "expired", event: { bounce_type: "soft" } }]);
    assert.deepEqual((await list.list({ limit: 10 })).entries, []);
    assert.deepEqual((await other.list.list({ limit: 10 })).entries, []);
  });

  it("stores a suppressed recipient as final with its event; it is never claimed", async () => {
    const { queue, database } = await fresh();
    const m = message(["stop@d.test", "go@d.test"]);
    const id = await queue.enqueue({
      ...m,
      recipients: [{ ...m.recipients[0]!, suppressed: { reason: "manual" } }, m.recipients[1]!],
    });
    const claims = await queue.claimDue(10, 60_000);
    assert.deepEqual(claims.map((c) => c.address), ["go@d.test"]);
    const states = await database.client.execute({
      sql: "SELECT address, state FROM recipients WHERE message_id = ? ORDER BY id",
      args: [id],
    });
    assert.deepEqual(states.rows.map((r) => [r.address, r.state]), [["stop@d.test", "suppressed"], [
      "go@d.test",
      "queued",
    ]]);
    const events = await database.client.execute({
      sql: "SELECT type, recipient, data FROM events WHERE message_id = ? ORDER BY id",
      args: [id],
    });
    assert.deepEqual(
      events.rows.filter((e) => e.type === "suppressed").map((e) => [e.recipient, JSON.parse(String(e.data))]),
      [["stop@d.test", { reason: "manual" }]],
    );
  });

  it("keeps no body for a message whose every recipient is suppressed", async () => {
    const { queue, database } = await fresh();
    const m = message(["stop@d.test"]);
    const id = await queue.enqueue({ ...m, recipients: [{ ...m.recipients[0]!, suppressed: { reason: "manual" } }] });
    const kept = await queue.enqueue(message(["go@d.test"]));
    const sizes = await database.client.execute({
      sql: "SELECT id, length(body) AS n FROM messages WHERE id IN (?, ?)",
      args: [id, kept],
    });
    assert.deepEqual(
      Object.fromEntries(sizes.rows.map((r) => [r.id, Number(r.n) > 0])),
      { [id]: false, [kept]: true },
    );
  });
});
