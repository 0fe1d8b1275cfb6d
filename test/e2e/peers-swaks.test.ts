import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { swaks, swaksMissing } from "../helpers/peers.ts";
import { startWorld, type World } from "../helpers/world.ts";

describe("swaks (Debian) as the SMTP client", () => {
  let world: World;
  before(async () => {
    if (swaksMissing) return; // every test below is skipped, with the reason
    world = await startWorld();
  });
  after(async () => {
    await world?.close();
  });

  it(
    "submits a message the relay queues (250) and delivers with Subject and body intact",
    { skip: swaksMissing },
    async () => {
      const message = [
        "--from",
        "a@sender.test",
        "--to",
        "ok@dest.test",
        "--header",
        "Subject: swaks interop check",
        "--header",
        "Date: Mon, 02 Feb 2026 10:00:00 +0000",
        "--header",
        "Message-Id: <swaks-interop@sender.test>",
        "--header",
        "X-Peer: swaks",
        "--body",
        "first body line\n.a line starting with a dot\nlast body line",
      ];
      // What swaks sends (its DATA template adds blank lines after the body), without connecting;
      // --dump-mail shows the wire form, so undo the dot-stuffing (RFC 5321 4.5.2). Its last
      // line ends are cut inconsistently around the final ".", so those are compared loosely.
      const dumped = await swaks(1, [...message, "--dump-mail"]);
      assert.equal(dumped.code, 0, dumped.stderr);
      const sent = dumped.stdout.replace(/\r?\n/g, "\r\n").replace(/\r\n\.\r\n$/, "\r\n").replace(/^\./gm, "");
      assert.ok(sent.includes("\r\n\r\nfirst body line\r\n.a line starting with a dot\r\nlast body line\r\n"), sent);
      const run = await swaks(world.relay.smtpPort, message);
      assert.equal(run.code, 0, `swaks failed:\n${run.stdout}\n${run.stderr}`);
      // swaks prints server lines as "<-  250 ..." (or "<~ " under TLS).
      const queued = /^<[-~] +250 2\.0\.0 OK queued as ([0-9A-Z]{26})$/m.exec(run.stdout);
      assert.ok(queued, `no "250 ... queued as" line in swaks output:\n${run.stdout}`);
      assert.match(run.stdout, /^<[-~] +220 relay\.test ESMTP/m, "banner names the relay");
      assert.match(run.stdout, /^<[-~] +250[- ]8BITMIME$/m);
      const id = queued[1]!;

      await world.destination.waitFor((m) => m.some((r) => r.data.includes("swaks interop check")));
      const got = world.destination.messages.find((m) => m.data.includes("swaks interop check"))!;
      assert.equal(got.mailFrom, "a@sender.test");
      assert.deepEqual(got.recipients, ["ok@dest.test"]);
      assert.match(got.data, /\r\nSubject: swaks interop check\r\n/);
      assert.match(got.data, /\r\nX-Peer: swaks\r\n/);
      assert.match(got.data, /\r\nTo: ok@dest\.test\r\n/);
      assert.match(got.data, /\r\nFrom: a@sender\.test\r\n/);
      // The relay prepends its Received header and changes nothing else (Message-Id and Date were given).
      assert.match(got.data, /^Received: from swaks\.test \(\[(::ffff:)?127\.0\.0\.1\]\)\r\n\tby relay\.test/);
      const afterReceived = got.data.replace(/^Received:.*\r\n(?:[ \t].*\r\n)*/, "");
      assert.equal(
        afterReceived.replace(/(\r\n)+$/, ""),
        sent.replace(/[\r\n]+$/, ""),
        "the message arrives as swaks sent it",
      );
      assert.match(afterReceived, /\r\nlast body line\r\n(\r\n)*$/);
      const delivered = await world.waitForEvent((e) => e.type === "delivered" && e.message_id === id);
      assert.equal(delivered.recipient, "ok@dest.test");
    },
  );
});

describe("swaks (Debian) denied relaying when loopback is outside RELAY_RELAY_NETWORKS", () => {
  let world: World;
  before(async () => {
    if (swaksMissing) return; // every test below is skipped, with the reason
    world = await startWorld({ env: { RELAY_RELAY_NETWORKS: "10.0.0.0/8" } });
  });
  after(async () => {
    await world?.close();
  });

  it("reports 554 5.7.1 and exits non-zero; nothing is queued or delivered", { skip: swaksMissing }, async () => {
    const run = await swaks(world.relay.smtpPort, [
      "--from",
      "a@sender.test",
      "--to",
      "ok@dest.test",
      "--header",
      "Subject: must not be relayed",
      "--body",
      "denied",
    ]);
    assert.notEqual(run.code, 0, `swaks succeeded but relaying should be denied:\n${run.stdout}`);
    assert.match(run.stdout, /^<\*\* +554 5\.7\.1 /m, `no 554 5.7.1 in swaks output:\n${run.stdout}\n${run.stderr}`);
    assert.doesNotMatch(run.stdout, /queued as/);
    assert.equal(world.destination.messages.length, 0);
    const events = await world.events();
    assert.deepEqual(events.filter((e) => e.type === "received" || e.type === "delivered"), []);
  });
});
