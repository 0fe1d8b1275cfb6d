// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startWorld, type World } from "../helpers/world.ts";

describe("HTTP API: idempotency, header rules, OpenAPI and docs", () => {
  let world: World;
  before(async () => {
    world = await startWorld();
  });
  after(async () => {
    await world?.close();
  });

  const send = async (body: unknown, key?: string) => {
    const response = await fetch(world.relay.url("/v1/messages"), {
      method: "POST",
      headers: {
        authorization: `Bearer ${world.relay.adminToken}`,
        "content-type": "application/json",
        ...(key === undefined ? {} : { "idempotency-key": key }),
      },
      body: JSON.stringify(body),
    });
    return {
      status: response.status,
      replayed: response.headers.get("idempotency-replayed"),
      json: (await response.json()) as any,
    };
  };
  const receivedFor = async (recipient: string) =>
    (await world.events()).filter((e) => e.type === "received" && e.recipient === recipient).length;

  it("a repeated Idempotency-Key replays the first answer and the message is sent once", async () => {
    const body = { mail_from: "a@sender.test", rcpt_to: ["idem@dest.test"], raw: "Subject: idempotent\n\nonce\n" };
    const first = await send(body, "e2e-order-1");
    assert.equal(first.status, 202);
    assert.equal(first.replayed, null);
    const again = await send(body, "e2e-order-1");
    assert.equal(again.status, 202);
    assert.equal(again.replayed, "true");
    assert.equal(again.json.id, first.json.id);
    await world.waitForEvent((e) => e.type === "delivered" && e.message_id === first.json.id);
    assert.equal(await receivedFor("idem@dest.test"), 1);
    assert.equal(world.destination.messages.filter((m) => m.data.includes("Subject: idempotent")).length, 1);
  });

  it("concurrent duplicates are enqueued once", async () => {
    const body = { mail_from: "a@sender.test", rcpt_to: ["burst@dest.test"], raw: "Subject: burst\n\nx\n" };
    const answers = await Promise.all(Array.from({ length: 6 }, () => send(body, "e2e-burst")));
    assert.deepEqual(answers.map((a) => a.status), Array(6).fill(202));
    assert.equal(new Set(answers.map((a) => a.json.id)).size, 1);
    assert.equal(await receivedFor("burst@dest.test"), 1);
  });

  it("the same key with another body is 409; a malformed key is 400", async () => {
    const body = { mail_from: "a@sender.test", rcpt_to: ["conflict@dest.test"], raw: "Subject: a\n\nx\n" };
    assert.equal((await send(body, "e2e-conflict")).status, 202);
    const conflict = await send({ ...body, raw: "Subject: b\n\nx\n" }, "e2e-conflict");
    assert.equal(conflict.status, 409);
    assert.equal(conflict.json.status, 409);
    const bad = await send(body, "k".repeat(256));
    assert.equal(bad.status, 400);
    assert.equal(await receivedFor("conflict@dest.test"), 1);
  });

  it("Bcc (or any structural header) through headers{} is 422, pointing to the field to use", async () => {
    const response = await send({
      from: "a@sender.test",
      to: ["x@dest.test"],
      text: "x",
      headers: { Bcc: "spy@dest.test" },
    });
    assert.equal(response.status, 422);
    assert.equal(response.json.errors[0].field, "headers.Bcc");
    assert.match(response.json.errors[0].message, /use bcc/);
  });

  it("GET /openapi.json and /docs need no token and describe POST /v1/messages", async () => {
    const spec = await fetch(world.relay.url("/openapi.json"));
    assert.equal(spec.status, 200);
    const doc = (await spec.json()) as any;
    assert.equal(doc.openapi, "3.1.0");
    assert.ok(doc.paths["/v1/messages"].post.requestBody);
    assert.ok(doc.components.schemas.StructuredMessage.properties.attachments);
    assert.equal(doc.components.securitySchemes.bearer.scheme, "bearer");
    const docs = await fetch(world.relay.url("/docs"));
    assert.equal(docs.status, 200);
    assert.match(docs.headers.get("content-type")!, /text\/html/);
    const html = await docs.text();
    assert.ok(html.includes("/v1/messages"));
    assert.doesNotMatch(html, /<script/i);
  });
});
