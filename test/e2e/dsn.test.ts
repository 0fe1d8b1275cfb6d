import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Destination, type Received, startDestination } from "../fixtures/smtp-destination.ts";
import { SmtpTalk } from "../helpers/smtp-talk.ts";
import { defaultZone, startWorld, type World } from "../helpers/world.ts";

/** One transaction with DSN parameters (RFC 3461); returns the queue id. */
async function send(
  port: number,
  from: string,
  mailParams: string,
  rcpts: readonly { to: string; params?: string }[],
  message: string,
): Promise<string> {
  const talk = await SmtpTalk.open(port);
  try {
    assert.match(await talk.reply(), /^220/);
    assert.match(await talk.command("EHLO client.test"), /^250[\s\S]*DSN/);
    assert.match(await talk.command(`MAIL FROM:<${from}>${mailParams ? ` ${mailParams}` : ""}`), /^250/);
    for (const r of rcpts) {
      assert.match(await talk.command(`RCPT TO:<${r.to}>${r.params ? ` ${r.params}` : ""}`), /^250/);
    }
    assert.match(await talk.command("DATA"), /^354/);
    const data = await talk.command(`${message.replace(/\r?\n/g, "\r\n")}\r\n.`);
    assert.match(data, /^250/);
    await talk.command("QUIT");
    return /queued as (\S+)/.exec(data)![1]!;
  } finally {
    talk.close();
  }
}

const isDsnTo = (sender: string) => (m: Received) => m.mailFrom === "" && m.recipients.includes(sender);
/** The DSNs to `sender` about the message whose subject is `subject`. */
const dsnsAbout = (destination: Destination, sender: string, subject: string) =>
  destination.messages.filter((m) => isDsnTo(sender)(m) && m.data.includes(`Subject: ${subject}`));
const finalRecipients = (dsn: Received) =>
  [...dsn.data.matchAll(/^Final-Recipient: rfc822; ?(\S+)\r?$/gim)].map((m) => m[1]!.toLowerCase());
const actions = (dsn: Received) => [...dsn.data.matchAll(/^Action: (\S+)\r?$/gim)].map((m) => m[1]);

describe("DSN (RFC 3461/3464): NOTIFY, one report per message, delay warnings, success", () => {
  let world: World;
  /** A second destination that does not advertise DSN, for plain.test (RELAY_ROUTES). */
  let plain: Destination;

  before(async () => {
    plain = await startDestination();
    world = await startWorld({
      // other.test is its own MX site, so its recipients are a separate destination and work item.
      zone: {
        ...defaultZone(),
        "other.test": { MX: [{ preference: 10, exchange: "mx.other.test" }] },
        "mx.other.test": { A: ["127.0.0.1"] },
      },
      destination: { dsn: true },
      env: {
        RELAY_ROUTES: `plain.test=127.0.0.1:${plain.port}`,
        RELAY_RETRY_SCHEDULE: "1s",
        RELAY_DELAY_WARNING_AFTER: "1s",
        RELAY_MAX_QUEUE_TIME: "6s",
      },
    });
  });
  after(async () => {
    await world?.close();
    await plain?.close();
  });

  it("two recipients failing at different destinations get exactly one DSN listing both, with ENVID and ORCPT", async () => {
    const id = await send(
      world.relay.smtpPort,
      "alice@sender.test",
      "ENVID=env+2Bid-42",
      [
        { to: "permfail@dest.test", params: "NOTIFY=FAILURE ORCPT=rfc822;Orig+2BOne@example.test" },
        { to: "nouser@other.test" },
        { to: "fine@dest.test" },
      ],
      "Subject: two failures\r\n\r\nbody of two failures\r\n",
    );
    await world.waitForEvent((e) =>
      e.type === "bounced" && e.message_id === id && e.recipient === "permfail@dest.test"
    );
    await world.waitForEvent((e) => e.type === "bounced" && e.message_id === id && e.recipient === "nouser@other.test");
    await world.destination.waitFor(() => dsnsAbout(world.destination, "alice@sender.test", "two failures").length > 0);
    const dsns = dsnsAbout(world.destination, "alice@sender.test", "two failures");
    assert.equal(dsns.length, 1);
    const dsn = dsns[0]!;
    // The marks are cleared in the transaction that queued this DSN: both are in it, so no second one can follow.
    assert.deepEqual(finalRecipients(dsn).sort(), ["nouser@other.test", "permfail@dest.test"]);
    assert.deepEqual(actions(dsn), ["failed", "failed"]);
    assert.match(dsn.data, /^Original-Envelope-Id: env\+id-42\r?$/im);
    assert.match(dsn.data, /^Original-Recipient: rfc822; ?Orig\+One@example\.test\r?$/im);
    assert.match(dsn.data, /^Remote-MTA: dns; ?mx\.(dest|other)\.test\r?$/im);
    assert.match(dsn.data, /body of two failures/, "RET absent: the whole original comes back");
  });

  it("NOTIFY=NEVER: that recipient is left out of the message's DSN", async () => {
    const id = await send(
      world.relay.smtpPort,
      "bob@sender.test",
      "",
      [
        { to: "permfail@dest.test", params: "NOTIFY=NEVER" },
        { to: "nouser@dest.test", params: "NOTIFY=FAILURE" },
      ],
      "Subject: never notify\r\n\r\nx\r\n",
    );
    await world.waitForEvent((e) =>
      e.type === "bounced" && e.message_id === id && e.recipient === "permfail@dest.test"
    );
    await world.destination.waitFor(() => dsnsAbout(world.destination, "bob@sender.test", "never notify").length > 0);
    const dsns = dsnsAbout(world.destination, "bob@sender.test", "never notify");
    assert.equal(dsns.length, 1);
    assert.deepEqual(finalRecipients(dsns[0]!), ["nouser@dest.test"]);
  });

  it("NOTIFY=NEVER on every recipient: no DSN at all", async () => {
    const id = await send(world.relay.smtpPort, "nobody@sender.test", "", [{
      to: "permfail@dest.test",
      params: "NOTIFY=NEVER",
    }], "Subject: silent\r\n\r\nx\r\n");
    await world.waitForEvent((e) => e.type === "bounced" && e.message_id === id);
    // The relay's own enqueues are "received" events from source "bounce"; a DSN to this sender would be one.
    // Send a marker afterwards whose DSN is certain, and check once it has arrived.
    const marker = await send(
      world.relay.smtpPort,
      "nobody@sender.test",
      "",
      [{ to: "nouser@dest.test" }],
      "Subject: marker\r\n\r\nx\r\n",
    );
    await world.waitForEvent((e) => e.type === "bounced" && e.message_id === marker);
    await world.destination.waitFor(() => dsnsAbout(world.destination, "nobody@sender.test", "marker").length > 0);
    assert.equal(dsnsAbout(world.destination, "nobody@sender.test", "silent").length, 0);
  });

  it("RET=HDRS: the DSN returns only the original's headers", async () => {
    await send(
      world.relay.smtpPort,
      "hdrs@sender.test",
      "RET=HDRS",
      [{ to: "permfail@dest.test" }],
      "Subject: headers only\r\n\r\nsecret body text\r\n",
    );
    await world.destination.waitFor(() => dsnsAbout(world.destination, "hdrs@sender.test", "headers only").length > 0);
    const dsn = dsnsAbout(world.destination, "hdrs@sender.test", "headers only")[0]!;
    assert.match(dsn.data, /^Content-Type: text\/rfc822-headers/im);
    assert.doesNotMatch(dsn.data, /^Content-Type: message\/rfc822/im);
    assert.doesNotMatch(dsn.data, /secret body text/);
  });

  it("NOTIFY=SUCCESS to a next hop that does DSN: NOTIFY, ORCPT, RET and ENVID are passed on, no DSN from us", async () => {
    const id = await send(
      world.relay.smtpPort,
      "carol@sender.test",
      "RET=HDRS ENVID=carol+2B1",
      [
        { to: "fine@dest.test", params: "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;fine+2Borig@dest.test" },
        { to: "nouser@dest.test", params: "NOTIFY=FAILURE" },
      ],
      "Subject: success passed on\r\n\r\nx\r\n",
    );
    await world.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    const received = world.destination.messages.find((m) =>
      m.mailFrom === "carol@sender.test" && m.recipients.includes("fine@dest.test")
    )!;
    assert.ok(received);
    assert.deepEqual(received.rcptParams["fine@dest.test"], [
      "NOTIFY=SUCCESS,FAILURE",
      "ORCPT=rfc822;fine+2Borig@dest.test",
    ]);
    assert.ok(received.mailParams.includes("RET=HDRS"), received.mailParams.join(" "));
    assert.ok(received.mailParams.includes("ENVID=carol+2B1"), received.mailParams.join(" "));
    // Both recipients were settled in one transaction: the one DSN of this message shows the failure only.
    await world.destination.waitFor(() =>
      dsnsAbout(world.destination, "carol@sender.test", "success passed on").length > 0
    );
    const dsns = dsnsAbout(world.destination, "carol@sender.test", "success passed on");
    assert.equal(dsns.length, 1);
    assert.deepEqual(finalRecipients(dsns[0]!), ["nouser@dest.test"]);
    assert.deepEqual(actions(dsns[0]!), ["failed"]);
  });

  it("NOTIFY=SUCCESS to a next hop without DSN: nothing passed on, a 'relayed' DSN from us", async () => {
    const id = await send(
      world.relay.smtpPort,
      "dave@sender.test",
      "ENVID=dave-1",
      [{ to: "ok@plain.test", params: "NOTIFY=SUCCESS ORCPT=rfc822;ok@plain.test" }],
      "Subject: relayed onward\r\n\r\nthe body stays home\r\n",
    );
    await world.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    const received = plain.messages.find((m) => m.mailFrom === "dave@sender.test")!;
    assert.deepEqual(received.rcptParams["ok@plain.test"], []);
    assert.ok(!received.mailParams.some((p) => /^(RET|ENVID)=/i.test(p)), received.mailParams.join(" "));
    await world.destination.waitFor(() =>
      dsnsAbout(world.destination, "dave@sender.test", "relayed onward").length > 0
    );
    const dsn = dsnsAbout(world.destination, "dave@sender.test", "relayed onward")[0]!;
    assert.deepEqual(finalRecipients(dsn), ["ok@plain.test"]);
    assert.deepEqual(actions(dsn), ["relayed"]);
    assert.match(dsn.data, /^Status: 2\.\d+\.\d+\r?$/im);
    assert.match(dsn.data, /^Original-Envelope-Id: dave-1\r?$/im);
    assert.match(dsn.data, /^Content-Type: text\/rfc822-headers/im, "no failure in it: headers only (RFC 3461 4.3)");
    assert.doesNotMatch(dsn.data, /the body stays home/);
  });

  // The timeout is a safety net, not a threshold: the recipient expires after RELAY_MAX_QUEUE_TIME.
  it(
    "NOTIFY=DELAY,FAILURE and a recipient that keeps failing: one delay warning (not one per retry), then the failure DSN",
    { timeout: 60_000 },
    async () => {
      const id = await send(
        world.relay.smtpPort,
        "erin@sender.test",
        "",
        [{ to: "tempfail@dest.test", params: "NOTIFY=DELAY,FAILURE" }],
        "Subject: slow going\r\n\r\nx\r\n",
      );
      await world.waitForEvent((e) => e.type === "expired" && e.message_id === id, 30_000);
      await world.destination.waitFor(
        () => dsnsAbout(world.destination, "erin@sender.test", "slow going").some((d) => actions(d).includes("failed")),
        20_000,
      );
      const deferrals = (await world.events()).filter((e) => e.type === "deferred" && e.message_id === id);
      assert.ok(
        deferrals.length >= 2,
        `retried more than once after the warning threshold (${deferrals.length} deferrals)`,
      );
      const dsns = dsnsAbout(world.destination, "erin@sender.test", "slow going");
      const delays = dsns.filter((d) => actions(d).includes("delayed"));
      const failures = dsns.filter((d) => actions(d).includes("failed"));
      assert.equal(delays.length, 1, "one delay warning per recipient");
      assert.equal(failures.length, 1);
      assert.ok(dsns.indexOf(delays[0]!) < dsns.indexOf(failures[0]!), "the warning came first");
      const warning = delays[0]!;
      assert.match(warning.data, /^Subject: Delivery Status Notification \(Delay\)/im);
      assert.match(warning.data, /^Will-Retry-Until: /im);
      assert.match(warning.data, /^Status: 4\.3\.0\r?$/im);
      assert.match(failures[0]!.data, /^Status: 5\.4\.7\r?$/im);
    },
  );
});
