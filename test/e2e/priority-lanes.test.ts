// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * Priority lanes (issue 13), end to end against the real relay: each source
 * of a message's lane (the HTTP priority field, the header the operator
 * names in RELAY_PRIORITY_HEADER, an SMTP user's and an API key's own
 * priority) gives the lane GET /v1/messages/:id shows and the events carry.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { submitWithAuth } from "../helpers/authenticated-submit.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { waitUntil } from "../helpers/wait-until.ts";
import { startWorld, type World } from "../helpers/world.ts";

const HEADER = "X-Relay-Priority";
const PASSWORD = "a long enough secret";

describe("priority lanes: where a message's lane comes from", () => {
  let world: World;
  let bulkKey: string;
  before(async () => {
    world = await startWorld({ env: { RELAY_PRIORITY_HEADER: HEADER } });
    const cli = (args: string[], input?: string) => runRelay(args, { dataDir: world.relay.dataDir, input });
    for (const [name, priority] of [["plain", "transactional"], ["newsletter", "bulk"]]) {
      const added = await cli(["users", "add", name!, "--priority", priority!], `${PASSWORD}\n`);
      assert.equal(added.code, 0, added.stderr);
    }
    const key = await cli(["keys", "create", "--scope", "send,read", "--priority", "bulk", "--json"]);
    assert.equal(key.code, 0, key.stderr);
    bulkKey = JSON.parse(key.stdout).token;
    // RELAY_SENDER_POLICY=verified (the default): SMTP users and API keys send From a verified domain.
    await world.verifySendingDomain("sender.test");
  });
  after(async () => {
    await world?.close();
  });

  /** POST /v1/messages (raw) with a bearer token, default the admin token; the message id. */
  const post = async (over: Record<string, unknown>, headers = "", token = world.relay.adminToken) => {
    const response = await fetch(world.relay.url("/v1/messages"), {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({
        mail_from: "app@sender.test",
        rcpt_to: ["friend@dest.test"],
        raw: `From: app@sender.test\nTo: friend@dest.test\n${headers}Subject: lanes\n\nhello\n`,
        ...over,
      }),
    });
    const json: any = await response.json();
    assert.equal(response.status, 202, JSON.stringify(json));
    return json.id as string;
  };

  /** Over SMTP with STARTTLS + AUTH PLAIN; the message id from the 250 reply. */
  const submitAs = async (user: string, headers = "") => {
    const answer = await submitWithAuth({
      port: world.relay.smtpPort,
      user,
      password: PASSWORD,
      mailFrom: "app@sender.test",
      rcptTo: ["friend@dest.test"],
      raw: `From: app@sender.test\r\nTo: friend@dest.test\r\n${headers}Subject: lanes\r\n\r\nhello\r\n`,
    });
    assert.ok(answer.ok, answer.response);
    return queuedId(answer.response);
  };

  /** Over SMTP from inside RELAY_RELAY_NETWORKS, without AUTH; the message id. */
  const submitPlain = async (headers: string) => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "app@sender.test",
      ["friend@dest.test"],
      `From: app@sender.test\r\nTo: friend@dest.test\r\n${headers}Subject: lanes\r\n\r\nhello\r\n`,
    );
    return queuedId(replies.at(-2)!);
  };

  const queuedId = (reply: string) => {
    const id = /^250 .*queued as (\S+)/.exec(reply)?.[1];
    assert.ok(id, reply);
    return id;
  };

  /** The lane GET /v1/messages/:id shows, once delivered; the delivered event carries it too. */
  const laneOf = async (id: string) => {
    const view = await waitUntil(
      async () => (await world.api("GET", `/v1/messages/${id}`)).json,
      (v) => v.recipients[0].state === "delivered",
      { what: `message ${id} delivered`, timeout: 20_000 },
    );
    const lane = view.recipients[0].priority;
    for (const type of ["received", "delivered"]) {
      assert.equal(view.events.find((e: any) => e.type === type)?.priority, lane, `${type} event of ${id}`);
    }
    return lane;
  };

  it("HTTP: the priority field; without it, transactional", async () => {
    assert.equal(await laneOf(await post({ priority: "bulk" })), "bulk");
    assert.equal(await laneOf(await post({})), "transactional");
  });

  it("the operator's header, over SMTP as over HTTP", async () => {
    assert.equal(await laneOf(await submitPlain(`${HEADER}: bulk\r\n`)), "bulk");
    assert.equal(await laneOf(await post({}, `${HEADER}: BULK\n`)), "bulk");
  });

  it("over SMTP, a header value that is neither lane is ignored and logged, and the mail is accepted", async () => {
    const id = await submitPlain(`${HEADER}: 3 (Normal)\r\n`);
    assert.equal(await laneOf(id), "transactional");
    const line = world.relay.stderr.split("\n").find((l) => l.includes("priority header ignored"));
    assert.ok(line, world.relay.stderr);
    const { level, message_id, header, value, lane } = JSON.parse(line);
    assert.deepEqual({ level, message_id, header, value, lane }, {
      level: "warn",
      message_id: id,
      header: HEADER,
      value: "3 (Normal)",
      lane: "transactional",
    });
  });

  it("an SMTP user's priority, unless the header names another", async () => {
    assert.equal(await laneOf(await submitAs("newsletter")), "bulk");
    assert.equal(await laneOf(await submitAs("plain")), "transactional");
    assert.equal(await laneOf(await submitAs("newsletter", `${HEADER}: transactional\r\n`)), "transactional");
  });

  it("an API key's priority, unless the header or the priority field names another", async () => {
    assert.equal(await laneOf(await post({}, "", bulkKey)), "bulk");
    assert.equal(await laneOf(await post({}, `${HEADER}: transactional\n`, bulkKey)), "transactional");
    assert.equal(await laneOf(await post({ priority: "transactional" }, "", bulkKey)), "transactional");
  });
});
