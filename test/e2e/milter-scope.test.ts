// deno-lint-ignore-file no-explicit-any -- JSON answers are checked by assertions, not by types
/**
 * A user's or API key's own scanning setting (issue 18) against
 * RELAY_MILTER_SCOPE, end to end: with the scope naming SMTP users only and
 * a scripted milter that refuses every message, an API key made with
 * `--scan on` is scanned and a default one is not; an SMTP AUTH user (over
 * STARTTLS, from outside RELAY_RELAY_NETWORKS) made with `--scan off` is not
 * scanned and a default one is.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Reply } from "../../src/milter/constants.ts";
import { type MilterPeer, replyPacket, startMilterPeer } from "../fixtures/milter-peer.ts";
import { submitWithAuth } from "../helpers/authenticated-submit.ts";
import { runRelay } from "../helpers/relay-process.ts";
import { startWorld, type World } from "../helpers/world.ts";

const PASSWORD = "a long enough secret";
const REFUSAL = "550 5.7.0 refused by the test milter";

describe("content scanning: a user's or key's --scan against RELAY_MILTER_SCOPE=users", () => {
  let peer: MilterPeer;
  let world: World;
  const cli = async (args: string[], input?: string) => {
    const result = await runRelay(args, { dataDir: world.relay.dataDir, input });
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  };
  const keyToken = async (...scan: string[]) =>
    JSON.parse(await cli(["keys", "create", "--scope", "send", ...scan, "--json"])).token as string;
  const post = async (token: string, subject: string) => {
    const response = await fetch(world.relay.url("/v1/messages"), {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ from: "a@sender.test", to: ["bob@dest.test"], subject, text: "hello" }),
    });
    return { status: response.status, json: await response.json() as any };
  };
  /** One message with STARTTLS and AUTH PLAIN; the final reply's code. */
  const smtpSubmit = (user: string) =>
    submitWithAuth({
      port: world.relay.smtpPort,
      user,
      password: PASSWORD,
      mailFrom: "a@sender.test",
      rcptTo: ["bob@dest.test"],
      raw: `From: a@sender.test\r\nTo: bob@dest.test\r\nSubject: from ${user}\r\n\r\nhello\r\n`,
    });

  before(async () => {
    peer = await startMilterPeer({
      script: (command) =>
        command.letter === "E"
          ? [replyPacket(String.fromCharCode(Reply.REPLYCODE), (w) => w.string(REFUSAL))]
          : undefined,
    });
    world = await startWorld({
      env: {
        RELAY_MILTERS: peer.address,
        RELAY_MILTER_SCOPE: "users",
        // Loopback is outside the relay networks: SMTP clients must AUTH, and so count as users.
        RELAY_RELAY_NETWORKS: "10.0.0.0/8",
        RELAY_SENDER_POLICY: "any",
      },
    });
    await cli(["users", "add", "plain"], `${PASSWORD}\n`);
    await cli(["users", "add", "trusted", "--scan", "off"], `${PASSWORD}\n`);
  });
  after(async () => {
    await world?.close();
    await peer?.close();
  });

  it("an API key is not scanned unless it was made with --scan on", async () => {
    const unscanned = await post(await keyToken(), "default key");
    assert.equal(unscanned.status, 202, JSON.stringify(unscanned.json));
    const received = await world.waitForEvent((e) => e.type === "received" && e.message_id === unscanned.json.id);
    assert.equal(received.scan, undefined, "no scanner's part recorded");

    const scanned = await post(await keyToken("--scan", "on"), "scanned key");
    assert.equal(scanned.status, 422, JSON.stringify(scanned.json));
    assert.equal(scanned.json.title, "Message refused by a content scanner");
    assert.equal(scanned.json.detail, REFUSAL);
  });

  it("an SMTP AUTH user is scanned unless it was added with --scan off", async () => {
    const scanned = await smtpSubmit("plain");
    assert.equal(scanned.code, 550, scanned.response);
    assert.match(scanned.response, /refused by the test milter/);

    const unscanned = await smtpSubmit("trusted");
    assert.equal(unscanned.code, 250, unscanned.response);
  });
});
