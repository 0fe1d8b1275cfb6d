import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mtaStsFixture, mxDomainZone, policyText } from "../helpers/pki.ts";
import { freePort } from "../helpers/relay-process.ts";
import { sendMail } from "../helpers/smtp-talk.ts";
import { type World, worldForTests } from "../helpers/world.ts";

/**
 * MTA-STS (RFC 8461) in delivery, end to end: a DNS fixture publishing
 * `_mta-sts.<domain>` TXT and `mta-sts.<domain>` A, an HTTPS policy server on
 * 127.0.0.1 with a certificate from a test CA (RELAY_TLS_CA_FILE,
 * RELAY_MTA_STS_PORT), and destinations offering STARTTLS with certificates
 * that are valid for the MX name, valid for another name, or self-signed.
 *
 * Each world has one destination (RELAY_MX_PORT is one port), so the
 * failure cases live in worlds of their own whose destination must never see
 * a MAIL command.
 */

/** A safety net against a hang, not a threshold. */
const SAFETY = { timeout: 60_000 };

const sts = mtaStsFixture({
  "mta-sts.enforce.test": policyText("enforce", ["mx.good.test"]),
  "mta-sts.testing.test": policyText("testing", ["mx.elsewhere.test"]),
  "mta-sts.routed.test": policyText("enforce", ["mx.elsewhere.test"]),
  "mta-sts.wrongname.test": policyText("enforce", ["*.wrongname.test"]),
  "mta-sts.mismatch.test": policyText("enforce", ["mx.elsewhere.test"]),
  "mta-sts.selfsigned.test": policyText("enforce", ["mx.selfsigned.test"]),
});

const noMail = (world: World) => world.destination.sessions.every((s) => !s.commands.some((c) => /^MAIL /i.test(c)));

async function submit(world: World, to: string, subject: string): Promise<string> {
  const replies = await sendMail(world.relay.smtpPort, "a@sender.test", [to], `Subject: ${subject}\r\n\r\nbody\r\n`)
    .catch((error) => {
      throw new Error(
        `submitting to the relay failed (running: ${world.relay.running}, port ${world.relay.smtpPort}): ${error}\n${world.relay.stderr}`,
      );
    });
  const id = /queued as (\S+)/.exec(replies.at(-2) ?? "")?.[1];
  assert.ok(id, replies.join("\n"));
  return id;
}

describe("MTA-STS: a certificate valid for the MX name, signed by a trusted CA", () => {
  let destinationPort: number;
  const world = worldForTests(async () => {
    destinationPort = await freePort();
    return {
      destination: { port: destinationPort, starttls: sts.pki.leaf(["mx.good.test"]) },
      zone: {
        ...mxDomainZone("sender.test", "mx.good.test", false),
        ...mxDomainZone("enforce.test", "mx.good.test", true),
        // The certificate is not valid for mx.other.test: fine for opportunistic TLS.
        ...mxDomainZone("testing.test", "mx.other.test", true),
        ...mxDomainZone("nopolicy.test", "mx.other.test", false),
        ...mxDomainZone("routed.test", "mx.good.test", true),
      },
      env: sts.relayEnv({ RELAY_ROUTES: `routed.test=127.0.0.1:${destinationPort}` }),
    };
  });

  it(
    "enforce: delivered over verified TLS; the delivered event records the TLS version and cipher",
    SAFETY,
    async () => {
      const id = await submit(world(), "user@enforce.test", "sts enforce ok");
      const event = await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
      assert.match(event.tls?.version ?? "", /^TLSv1\.[23]$/, JSON.stringify(event));
      assert.ok(typeof event.tls.cipher === "string" && event.tls.cipher.length > 0);
      const got = world().destination.messages.find((m) => m.data.includes("sts enforce ok"));
      assert.equal(got?.tls, true);
      assert.ok(sts.policies.requests.includes("mta-sts.enforce.test"), "the policy was fetched over HTTPS");
    },
  );

  it(
    "testing: an MX the policy does not list and a certificate for another name still get the mail (opportunistic)",
    SAFETY,
    async () => {
      const id = await submit(world(), "user@testing.test", "sts testing");
      const event = await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
      assert.match(event.tls?.version ?? "", /^TLSv1\.[23]$/);
      assert.ok(sts.policies.requests.includes("mta-sts.testing.test"));
    },
  );

  it("no policy: opportunistic TLS as before", SAFETY, async () => {
    const id = await submit(world(), "user@nopolicy.test", "no sts");
    const event = await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    assert.match(event.tls?.version ?? "", /^TLSv1\.[23]$/);
    assert.ok(
      world().dns.queries.some((q) => q.name === "_mta-sts.nopolicy.test" && q.type === "TXT"),
      "the policy record was looked up",
    );
  });

  it("a static route (RELAY_ROUTES) is not subject to the domain's MTA-STS policy", SAFETY, async () => {
    const id = await submit(world(), "user@routed.test", "sts static route");
    await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    assert.equal(world().dns.queries.some((q) => q.name === "_mta-sts.routed.test"), false);
    assert.equal(sts.policies.requests.includes("mta-sts.routed.test"), false);
  });
});

describe("MTA-STS enforce: a certificate for another name, an MX the policy does not list", () => {
  const world = worldForTests(() => ({
    // Signed by the trusted CA, but for mx.good.test only.
    destination: { starttls: sts.pki.leaf(["mx.good.test"]) },
    zone: {
      ...mxDomainZone("sender.test", "mx.sender.test", false),
      ...mxDomainZone("wrongname.test", "mx.wrongname.test", true),
      // mx.good.test would pass TLS verification, but the policy lists only mx.elsewhere.test.
      ...mxDomainZone("mismatch.test", "mx.good.test", true),
    },
    env: sts.relayEnv(),
  }));

  it("a certificate not valid for the MX name: deferred with 451 4.7.5, nothing sent in clear", SAFETY, async () => {
    const id = await submit(world(), "user@wrongname.test", "sts wrong name");
    const deferred = await world().waitForEvent((e) => e.type === "deferred" && e.message_id === id);
    assert.match(deferred.reply, /^451 4\.7\.5 /, JSON.stringify(deferred));
    assert.match(deferred.reply, /mx\.wrongname\.test/);
    // A second attempt (RELAY_RETRY_SCHEDULE=1s) fails the same way: still deferred, never bounced.
    await world().waitForEvent((e) => e.type === "deferred" && e.message_id === id && e.attempt >= 2);
    const sessions = world().destination.sessions.filter((s) => s.commands.some((c) => /^STARTTLS$/i.test(c)));
    assert.ok(sessions.length >= 2, "the relay tried STARTTLS");
    assert.ok(noMail(world()), JSON.stringify(world().destination.sessions));
    assert.equal(world().destination.messages.length, 0);
    const events = await world().events();
    assert.equal(events.some((e) => e.message_id === id && (e.type === "bounced" || e.type === "delivered")), false);
  });

  it("an MX host the policy does not list is not even connected to: deferred with 451 4.7.5", SAFETY, async () => {
    const id = await submit(world(), "user@mismatch.test", "sts mismatch");
    const deferred = await world().waitForEvent((e) => e.type === "deferred" && e.message_id === id);
    assert.match(
      deferred.reply,
      /^451 4\.7\.5 .*mx\.good\.test does not match the MTA-STS policy/,
      JSON.stringify(deferred),
    );
    assert.ok(noMail(world()));
    assert.equal(world().destination.messages.length, 0);
  });
});

describe("MTA-STS enforce: a self-signed certificate", () => {
  const world = worldForTests(() => ({
    destination: { starttls: sts.pki.leaf(["mx.selfsigned.test"], { selfSigned: true }) },
    zone: {
      ...mxDomainZone("sender.test", "mx.sender.test", false),
      ...mxDomainZone("selfsigned.test", "mx.selfsigned.test", true),
    },
    env: sts.relayEnv(),
  }));

  it("deferred with 451 4.7.5; the destination never sees MAIL", SAFETY, async () => {
    const id = await submit(world(), "user@selfsigned.test", "sts self signed");
    const deferred = await world().waitForEvent((e) => e.type === "deferred" && e.message_id === id);
    assert.match(deferred.reply, /^451 4\.7\.5 .*certificate/i, JSON.stringify(deferred));
    assert.ok(world().destination.sessions.some((s) => s.commands.includes("STARTTLS")));
    assert.ok(noMail(world()), JSON.stringify(world().destination.sessions));
    assert.equal(world().destination.messages.length, 0);
  });
});

describe("MTA-STS enforce: a destination without STARTTLS", () => {
  const world = worldForTests(() => ({
    zone: {
      ...mxDomainZone("sender.test", "mx.sender.test", false),
      ...mxDomainZone("enforce.test", "mx.good.test", true),
    },
    env: sts.relayEnv(),
  }));

  it("deferred with 451 4.7.5, never delivered in plaintext", SAFETY, async () => {
    const id = await submit(world(), "user@enforce.test", "sts no starttls");
    const deferred = await world().waitForEvent((e) => e.type === "deferred" && e.message_id === id);
    assert.match(deferred.reply, /^451 4\.7\.5 .*STARTTLS/, JSON.stringify(deferred));
    assert.ok(world().destination.sessions.length > 0);
    assert.ok(noMail(world()));
  });
});

describe("RELAY_MTA_STS=false", () => {
  const world = worldForTests(() => ({
    destination: { starttls: sts.pki.leaf(["mx.good.test"], { selfSigned: true }) },
    zone: {
      ...mxDomainZone("sender.test", "mx.sender.test", false),
      ...mxDomainZone("selfsigned.test", "mx.selfsigned.test", true),
    },
    env: sts.relayEnv({ RELAY_MTA_STS: "false" }),
  }));

  it("no policy lookup; opportunistic TLS", SAFETY, async () => {
    const id = await submit(world(), "user@selfsigned.test", "sts off");
    const event = await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    assert.match(event.tls?.version ?? "", /^TLSv1\.[23]$/);
    assert.equal(world().dns.queries.some((q) => q.name.startsWith("_mta-sts.")), false);
  });
});
