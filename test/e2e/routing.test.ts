import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Destination, startDestination } from "../fixtures/smtp-destination.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { startWorld, type World } from "../helpers/world.ts";
import { runRelay } from "../helpers/relay-process.ts";

describe("routing: static routes, source address, MX order", () => {
  let world: World;
  let smarthost: Destination;
  before(async () => {
    smarthost = await startDestination();
    world = await startWorld({
      env: {
        RELAY_ROUTES: `routed.test=127.0.0.1:${smarthost.port};[127.0.0.1]=127.0.0.1:${smarthost.port}`,
        RELAY_SOURCE_IP: "127.0.0.2",
      },
      zone: {
        "dest.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
        "sender.test": { MX: [{ preference: 10, exchange: "mx.dest.test" }] },
        "mx.dest.test": { A: ["127.0.0.1"] },
        // The preferred MX has no listener on 127.0.0.3; the relay falls back to the next one.
        "fallback.test": {
          MX: [{ preference: 5, exchange: "down.fallback.test" }, { preference: 20, exchange: "mx.dest.test" }],
        },
        "down.fallback.test": { A: ["127.0.0.3"] },
        "implicit.test": { A: ["127.0.0.1"] },
        "nullmx.test": { MX: [{ preference: 0, exchange: "." }] },
      },
    });
  });
  after(async () => {
    await world?.close();
    await smarthost?.close();
  });

  it("RELAY_ROUTES sends a domain to its static host instead of its MX", async () => {
    await sendMail(world.relay.smtpPort, "a@sender.test", ["x@routed.test"], "Subject: static route\r\n\r\nx\r\n");
    await smarthost.waitFor((m) => m.some((r) => r.data.includes("static route")));
    assert.equal(world.dns.queries.some((q) => q.name === "routed.test"), false, "no MX lookup for a routed domain");
  });

  it("an address literal RELAY_ROUTES names is accepted and delivered there; other loopback literals are refused", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["lit@[127.000.0.1]"],
      "Subject: routed literal\r\n\r\nx\r\n",
    );
    assert.match(replies[3]!, /^250 /);
    await smarthost.waitFor((m) => m.some((r) => r.data.includes("routed literal")));
    assert.deepEqual(smarthost.messages.find((r) => r.data.includes("routed literal"))!.recipients, [
      "lit@[127.000.0.1]",
    ]);
    const refused = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["lit@[127.0.0.3]"],
      "Subject: not routed\r\n\r\nx\r\n",
    );
    assert.match(refused[3]!, /^550 5\.7\.1 /);
    assert.match(refused[4]!, /^503 /, "no recipient, no data");
  });

  it("outbound connections leave from RELAY_SOURCE_IP", async () => {
    await sendMail(world.relay.smtpPort, "a@sender.test", ["src@dest.test"], "Subject: source ip\r\n\r\nx\r\n");
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("source ip")));
    const got = world.destination.messages.find((r) => r.data.includes("source ip"))!;
    assert.match(got.remoteAddress, /^(::ffff:)?127\.0\.0\.2$/);
    assert.equal(got.helo, "relay.test", "EHLO with RELAY_HOSTNAME");
  });

  it("a host that refuses the connection falls back to the next MX", async () => {
    await sendMail(world.relay.smtpPort, "a@sender.test", ["f@fallback.test"], "Subject: fallback mx\r\n\r\nx\r\n");
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("fallback mx")));
  });

  it("a domain without MX is delivered to its own address (implicit MX)", async () => {
    await sendMail(world.relay.smtpPort, "a@sender.test", ["i@implicit.test"], "Subject: implicit mx\r\n\r\nx\r\n");
    await world.destination.waitFor((m) => m.some((r) => r.data.includes("implicit mx")));
  });

  it("a null MX domain (RFC 7505) and a domain that does not exist bounce at once", async () => {
    const replies = await sendMail(
      world.relay.smtpPort,
      "a@sender.test",
      ["n@nullmx.test", "n@nxdomain.test"],
      "Subject: no mail here\r\n\r\nx\r\n",
    );
    const id = /queued as (\S+)/.exec(replies.at(-2)!)![1]!;
    const nullMx = await world.waitForEvent((e) => e.type === "bounced" && e.recipient === "n@nullmx.test");
    assert.match(nullMx.reply, /^550 5\.1\.10 /);
    const noDomain = await world.waitForEvent((e) => e.type === "bounced" && e.recipient === "n@nxdomain.test");
    assert.match(noDomain.reply, /^550 5\.1\.2 /);
    assert.equal(nullMx.message_id, id);
  });

  it("--env-file supplies variables the environment does not set", async () => {
    const file = join(world.relay.dataDir, "relay.env");
    writeFileSync(file, "# a comment\nRELAY_MX_PORT=not-a-port\n");
    const result = await runRelay(["migrate", "--env-file", file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /RELAY_MX_PORT: expected a port number/);
  });
});
