/**
 * SmtpChannel says which recipients a lost connection left untried (no reply
 * to their RCPT, no data sent): the destination sends those again on a fresh
 * connection when the lost one came from its pool.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { SmtpChannel } from "../../src/delivery/smtp-channel.ts";
import type { Payload, RecipientResult } from "../../src/delivery/work.ts";
import { SmtpClientSession } from "../../src/smtp/client/index.ts";
import { plainServer, scripted, type ScriptedPeer } from "../helpers/scripted-peer.ts";

const peers: ScriptedPeer[] = [];
after(() => Promise.all(peers.map((p) => p.close())));

/** A channel to a peer that answers as `answer` says (see scripted). */
async function channelTo(answer: (line: string) => string | null, timeouts = {}): Promise<SmtpChannel> {
  const peer = await scripted(answer);
  peers.push(peer);
  const session = await SmtpClientSession.open({
    host: "127.0.0.1",
    port: peer.port,
    heloName: "relay.test",
    tls: "none",
    timeouts,
  });
  return new SmtpChannel(session, "peer.test", 100);
}

const payload: Payload = {
  messageId: "m1",
  mailFrom: "a@sender.test",
  recipients: ["one@dest.test", "two@dest.test", "three@dest.test"],
  body: new TextEncoder().encode("Subject: x\r\n\r\nbody\r\n"),
};

const summary = (results: RecipientResult[]) =>
  results.map((r) => [r.address, r.reply.code, r.disposition, r.untried === true]);

describe("SmtpChannel: recipients a lost connection left untried", () => {
  it("hung up on at MAIL: every recipient untried, deferred", async () => {
    const channel = await channelTo((line) => (line.startsWith("MAIL") ? null : plainServer(line)));
    const results = await channel.send(payload);
    assert.deepEqual(summary(results), [
      ["one@dest.test", 451, "deferred", true],
      ["two@dest.test", 451, "deferred", true],
      ["three@dest.test", 451, "deferred", true],
    ]);
  });

  it("421 to MAIL (the server closes, RFC 5321 3.8): every recipient untried, with that 421", async () => {
    const channel = await channelTo((
      line,
    ) => (line.startsWith("MAIL") ? "421 4.4.2 idle too long, closing\r\n" : plainServer(line)));
    const results = await channel.send(payload);
    assert.deepEqual(summary(results), [
      ["one@dest.test", 421, "deferred", true],
      ["two@dest.test", 421, "deferred", true],
      ["three@dest.test", 421, "deferred", true],
    ]);
    assert.equal(channel.usable, false);
  });

  it("hung up on after the first RCPT was answered: that one was tried, the others not", async () => {
    const channel = await channelTo((line) => (line.startsWith("RCPT TO:<two") ? null : plainServer(line)));
    const results = await channel.send(payload);
    assert.deepEqual(summary(results), [
      ["one@dest.test", 451, "deferred", false],
      ["two@dest.test", 451, "deferred", true],
      ["three@dest.test", 451, "deferred", true],
    ]);
  });

  it("hung up on after the data: every recipient tried", async () => {
    let inData = false;
    const channel = await channelTo((line) => {
      if (line === ".") return null;
      if (inData) return "";
      inData = line === "DATA";
      return plainServer(line);
    });
    const results = await channel.send(payload);
    assert.ok(
      results.every((r) => r.disposition === "deferred" && r.untried !== true),
      JSON.stringify(summary(results)),
    );
  });

  it("no answer to MAIL (a timeout, not a lost connection): every recipient tried", async () => {
    let silent = false;
    const channel = await channelTo((line) => {
      silent ||= line.startsWith("MAIL");
      return silent ? "" : plainServer(line);
    }, { mail: 50 });
    const results = await channel.send(payload);
    assert.ok(
      results.every((r) => r.category === "no-answer-from-host" && r.untried !== true),
      JSON.stringify(summary(results)),
    );
  });

  it("a session already over: every recipient untried, nothing sent", async () => {
    const channel = await channelTo(plainServer);
    channel.close();
    const results = await channel.send(payload);
    assert.deepEqual(summary(results), [
      ["one@dest.test", 451, "deferred", true],
      ["two@dest.test", 451, "deferred", true],
      ["three@dest.test", 451, "deferred", true],
    ]);
  });
});
