/**
 * An open relay is impossible by construction: from outside
 * RELAY_RELAY_NETWORKS, without AUTH, mail goes only to RELAY_BOUNCE_DOMAIN,
 * and mail to it is read, never sent on. Every trick spammers use to reach
 * another domain through such a relay is tried here, over SMTP as they would:
 * source routes, the percent hack, quoted local parts, bang paths, address
 * literals, trailing dots and case, a lookalike (IDN) of the bounce domain,
 * the bounce domain as a prefix of another. Nothing reaches the destination.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SmtpTalk } from "../helpers/smtp-talk.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

const BOUNCE = "bounces.sender.test";

describe("no open relay, whatever the address", () => {
  let world: World;
  before(async () => {
    world = await startWorld({
      env: { RELAY_RELAY_NETWORKS: "10.0.0.0/8", RELAY_BOUNCE_DOMAIN: BOUNCE },
      zone: { ...defaultZone(), [BOUNCE]: { MX: [{ preference: 10, exchange: "mx.dest.test" }] } },
    });
  });
  after(async () => {
    await world?.close();
  });

  /** One transaction from outside: each recipient's reply, then DATA's and the message's when one was taken. */
  async function attempt(recipients: string[], smtputf8 = false): Promise<string[]> {
    const talk = await SmtpTalk.open(world.relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO spammer.example");
      await talk.command(`MAIL FROM:<spam@spammer.example>${smtputf8 ? " SMTPUTF8" : ""}`);
      const replies: string[] = [];
      for (const r of recipients) replies.push(await talk.command(`RCPT TO:${r}`));
      if (replies.some((r) => r.startsWith("250"))) {
        const data = await talk.command("DATA");
        if (data.startsWith("354")) replies.push(await talk.command(`Subject: relay test\r\n\r\nbuy now\r\n.`));
      }
      return replies;
    } finally {
      talk.close();
    }
  }

  it("refuses every address that names another domain, however it is written", async () => {
    const tricks = [
      "<victim@dest.test>",
      "<victim@DEST.TEST>",
      "<victim@dest.test.>",
      `<@${BOUNCE}:victim@dest.test>`,
      `<@${BOUNCE},@other.test:victim@dest.test>`,
      "<victim@[127.0.0.1]>",
      "<victim@[IPv6:::1]>",
      "<victim@[192.0.2.1]>",
      `<victim@${BOUNCE}.dest.test>`,
      `<victim@x${BOUNCE}>`,
      `<victim@${BOUNCE}@dest.test>`,
      "<dest.test!victim>",
      "<victim>",
    ];
    for (const trick of tricks) {
      const [reply] = await attempt([trick]);
      assert.match(reply!, /^5\d\d /, `${trick}: ${reply}`);
    }
    // A lookalike of the bounce domain (Cyrillic "о"): refused without SMTPUTF8, and with it not ours either.
    const lookalike = `<victim@b\u043eunces.sender.test>`;
    assert.match((await attempt([lookalike]))[0]!, /^5\d\d /);
    assert.match((await attempt([lookalike], true))[0]!, /^5\d\d /);
  });

  it("takes mail for the bounce domain in any disguise, and sends none of it on", async () => {
    const disguised = [
      `<victim%dest.test@${BOUNCE}>`,
      `<"victim@dest.test"@${BOUNCE}>`,
      `<dest.test!victim@${BOUNCE}>`,
      `<@dest.test:victim@${BOUNCE}>`,
    ];
    for (const address of disguised) {
      const replies = await attempt([address]);
      assert.ok(replies.every((r) => /^(250|354|5\d\d) /.test(r)), `${address}: ${replies.join(" | ")}`);
    }
    // Mail to the bounce domain is read (bounces, complaints), never queued: give it time to leak if it could.
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual(world.destination.messages.map((m) => m.recipients), []);
    const events = await world.events();
    assert.equal(events.filter((e) => e.type === "received").length, 0, JSON.stringify(events.slice(0, 3)));
  });
});
