// deno-lint-ignore-file no-explicit-any -- mailauth's results are checked by assertions, not by types
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { describe, it } from "node:test";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { generateDkimKey } from "../../src/auth/dkim-keys.ts";
import { type SigningKey, signMessage } from "../../src/auth/dkim-sign.ts";
import { headerValues } from "../../src/core/header-section.ts";
import type { LogLevel } from "../../src/core/log.ts";
import { QueueStore } from "../../src/queue/store.ts";
import { UnsubscribeStore } from "../../src/queue/unsubscribes.ts";
import { listUnsubscribeFields, mailtoToken } from "../../src/unsubscribe/list-headers.ts";
import { ListUnsubscribe } from "../../src/unsubscribe/list-unsubscribe.ts";
import type { SuppressionStore } from "../../src/queue/suppressions.ts";

type SuppressionEntry = Parameters<SuppressionStore["add"]>[0];
import { UnsubscribeTokens } from "../../src/unsubscribe/token.ts";
import { Unsubscriber } from "../../src/unsubscribe/unsubscribe.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { temporaryDatabases } from "../helpers/database.ts";

const temporaryDatabase = temporaryDatabases("relay-unsub-");

const T0 = 1_700_000_000_000;
const KEY = new Uint8Array(32).fill(7);
const tokens = new UnsubscribeTokens(KEY);
const AT = { publicUrl: "https://relay.example", bounceDomain: "bounces.example" };

describe("unsubscribe tokens", () => {
  it("name their recipient and nothing else", () => {
    const token = tokens.tokenFor(12345);
    assert.match(token, /^[0-9a-z]+\.[0-9a-f]{32}$/);
    assert.equal(tokens.recipientOf(token), 12345);
    assert.equal(tokens.recipientOf(token.toUpperCase()), 12345, "a mail system may fold the case");
    assert.notEqual(tokens.tokenFor(12346).split(".")[1], token.split(".")[1]);
  });

  it("are refused when altered, made with another key, or malformed", () => {
    const token = tokens.tokenFor(42);
    const [id, mac] = token.split(".");
    assert.equal(tokens.recipientOf(`${(43).toString(36)}.${mac}`), undefined);
    assert.equal(tokens.recipientOf(`${id}.${mac!.slice(0, -1)}${mac!.endsWith("0") ? "1" : "0"}`), undefined);
    assert.equal(new UnsubscribeTokens(new Uint8Array(32).fill(8)).recipientOf(token), undefined);
    for (const bad of ["", "42", `${id}.`, `.${mac}`, `${id}.${mac}0`, "zzzzzzzzzzzz.0"]) {
      assert.equal(tokens.recipientOf(bad), undefined, bad);
    }
  });
});

describe("List-Unsubscribe fields", () => {
  it("name the https link first, then the mailto address, and offer one-click with the link", () => {
    assert.deepEqual(listUnsubscribeFields("t.1", AT), [
      "List-Unsubscribe: <https://relay.example/u/t.1>,\r\n <mailto:unsubscribe+t.1@bounces.example>",
      "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ]);
  });

  it("offer no one-click without an https link, and nothing without either address", () => {
    assert.deepEqual(listUnsubscribeFields("t.1", { bounceDomain: "bounces.example" }), [
      "List-Unsubscribe: <mailto:unsubscribe+t.1@bounces.example>",
    ]);
    assert.deepEqual(listUnsubscribeFields("t.1", {}), []);
  });

  it("read the token back from a mailto address at the bounce domain only", () => {
    assert.equal(mailtoToken("unsubscribe+a.b@Bounces.Example", "bounces.example"), "a.b");
    assert.equal(mailtoToken("UNSUBSCRIBE+a.b@bounces.example", "bounces.example"), "a.b");
    assert.equal(mailtoToken("unsubscribe+a.b@other.example", "bounces.example"), undefined);
    assert.equal(mailtoToken("b.x.1@bounces.example", "bounces.example"), undefined);
  });
});

describe("ListUnsubscribe: a bulk recipient's copy", () => {
  const generated = generateDkimKey("rsa");
  const key: SigningKey = {
    domain: "sender.example",
    selector: "s1",
    algorithm: "rsa",
    privateKey: createPrivateKey(generated.privateKeyPem),
  };
  const txt = `v=DKIM1; k=rsa; p=${generated.publicKey}`;
  const logged: [LogLevel, string][] = [];
  const make = (addresses = AT) =>
    new ListUnsubscribe({
      tokens,
      addresses,
      signingKeys: async (domain) => (domain === "sender.example" ? [key] : []),
      clock: new FakeClock(T0),
      log: (level, message) => logged.push([level, message]),
    });
  const message = (from = "news@sender.example", extra = "") =>
    new TextEncoder().encode(`From: ${from}\r\nTo: ann@dest.example\r\nSubject: news\r\n${extra}\r\nhello\r\n`);
  const verify = async (bytes: Uint8Array) => {
    const result = await dkimVerify(Buffer.from(bytes), {
      resolver: async (name: string) => {
        if (name !== "s1._domainkey.sender.example") throw Object.assign(new Error(name), { code: "ENOTFOUND" });
        return [[txt]];
      },
    });
    return result.results.map((r: any) => ({ status: r.status.result, h: r.signingHeaders?.keys ?? "" }));
  };

  it("applies to bulk mail only, and only with an address to give", () => {
    assert.equal(make().applies("bulk"), true);
    assert.equal(make().applies("transactional"), false);
    assert.equal(make({ bounceDomain: "bounces.example" } as typeof AT).applies("bulk"), true);
  });

  it("sends bulk mail without fields when there is no address, and says so once", () => {
    const none = make({} as typeof AT);
    logged.length = 0;
    assert.equal(none.applies("bulk"), false);
    assert.equal(none.applies("bulk"), false);
    assert.deepEqual(logged.map(([level]) => level), ["warn"]);
  });

  it("signs the fields with the keys that signed the message at ingress; both signatures verify", async () => {
    const signed = signMessage(message(), [key], T0);
    const copy = await make().copyFor(signed, 7);
    assert.deepEqual(headerValues(copy, "List-Unsubscribe-Post").map((v) => v.trim()), ["List-Unsubscribe=One-Click"]);
    assert.ok(headerValues(copy, "List-Unsubscribe")[0]!.includes(`/u/${tokens.tokenFor(7)}>`));
    const results = await verify(copy);
    assert.deepEqual(results.map((r: any) => r.status), ["pass", "pass"]);
    assert.match(results[0]!.h, /List-Unsubscribe: *List-Unsubscribe-Post/i);
  });

  it("adds the fields unsigned to a message ingress did not sign", async () => {
    const copy = await make().copyFor(message("a@elsewhere.example"), 7);
    assert.equal(headerValues(copy, "List-Unsubscribe").length, 1);
    assert.equal(headerValues(copy, "DKIM-Signature").length, 0);
  });

  it("leaves a message that brings its own List-Unsubscribe as it is", async () => {
    const own = signMessage(message(undefined, "List-Unsubscribe: <mailto:leave@sender.example>\r\n"), [key], T0);
    assert.equal(await make().copyFor(own, 7), own);
  });
});

describe("Unsubscriber", () => {
  async function world() {
    const { database } = await temporaryDatabase(T0);
    const clock = new FakeClock(T0);
    const queue = new QueueStore(database, undefined, clock, "node-a");
    const store = new UnsubscribeStore(database, clock);
    const nodeTokens = new UnsubscribeTokens(await store.key(UnsubscribeTokens.newKey));
    const messageId = await queue.enqueue({
      mailFrom: "news@Sender.Example",
      recipients: [{ address: "ann@dest.example", domain: "dest.example" }],
      body: new TextEncoder().encode("Subject: t\r\n\r\nhi\r\n"),
      source: "http",
      lane: "bulk",
    });
    const [claim] = await queue.claimDue(10, 60_000);
    const added: SuppressionEntry[] = [];
    const unsubscriber = new Unsubscriber({
      tokens: nodeTokens,
      store,
      suppressions: { add: async (entry) => void added.push(entry) },
      bounceDomain: "bounces.example",
    });
    const unsubscribed = async () =>
      (await database.client.execute("select message_id, recipient, data from events where type = 'unsubscribed'"))
        .rows.map((r) => ({ ...r }));
    return { store, messageId, token: nodeTokens.tokenFor(claim!.recipientId), added, unsubscriber, unsubscribed };
  }

  it("keeps one token key per node", async () => {
    const { store } = await world();
    const first = await store.key(UnsubscribeTokens.newKey);
    assert.equal(first.length, 32);
    assert.deepEqual(await store.key(UnsubscribeTokens.newKey), first);
  });

  it("writes one unsubscribed event however often, and suppresses the address for the sending domain", async () => {
    const { messageId, token, added, unsubscriber, unsubscribed } = await world();
    assert.equal(await unsubscriber.knows(token), true);
    assert.equal(await unsubscriber.unsubscribeByToken(token, "one-click"), "unsubscribed");
    assert.equal(await unsubscriber.unsubscribeByToken(token, "page"), "already");
    assert.deepEqual(await unsubscribed(), [
      { message_id: messageId, recipient: "ann@dest.example", data: JSON.stringify({ via: "one-click" }) },
    ]);
    assert.deepEqual(added[0], {
      address: "ann@dest.example",
      scope: { kind: "domain", domain: "sender.example" },
      reason: "unsubscribe",
      source: { event: "unsubscribed", messageId },
    });
  });

  it("changes nothing for a token that is not ours", async () => {
    const { token, added, unsubscriber, unsubscribed } = await world();
    const forged = `${token.split(".")[0]}.${"0".repeat(32)}`;
    assert.equal(await unsubscriber.knows(forged), false);
    assert.equal(await unsubscriber.unsubscribeByToken(forged, "one-click"), "unknown");
    assert.deepEqual(await unsubscribed(), []);
    assert.deepEqual(added, []);
  });

  it("unsubscribes by mail to unsubscribe+TOKEN at the bounce domain, and by nothing else", async () => {
    const { token, unsubscriber, unsubscribed } = await world();
    assert.equal(await unsubscriber.unsubscribeByMail(`unsubscribe+${token}@other.example`), "unknown");
    assert.equal(await unsubscriber.unsubscribeByMail(`postmaster@bounces.example`), "unknown");
    assert.equal(
      await unsubscriber.unsubscribeByMail(`unsubscribe+${token.toUpperCase()}@BOUNCES.example`),
      "unsubscribed",
    );
    assert.deepEqual((await unsubscribed()).map((e) => e.data), [JSON.stringify({ via: "mail" })]);
  });
});
