import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Received } from "../fixtures/smtp-destination.ts";
import { mtaStsFixture, mxDomainZone, policyText } from "../helpers/pki.ts";
import { SmtpTalk } from "../helpers/smtp-talk.ts";
import { type World, worldForTests } from "../helpers/world.ts";

/**
 * REQUIRETLS and "TLS-Required: No" (RFC 8689) end to end. The relay takes
 * REQUIRETLS on MAIL FROM only inside TLS, and relays such mail only over
 * STARTTLS with a certificate verified for an MX host its MTA-STS policy
 * lists, to a server that advertises REQUIRETLS; otherwise it bounces it
 * (5.7.10, or 5.7.30 when the server lacks REQUIRETLS) with a headers-only
 * DSN. The DNS fixture, test CA and policy server are as in tls-policy.test.ts.
 *
 * Each world has one destination (RELAY_MX_PORT is one port): the sender's
 * domain points there too, so DSNs arrive at the same destination.
 */

/** A safety net against a hang, not a threshold. */
const SAFETY = { timeout: 60_000 };

const sts = mtaStsFixture({
  "mta-sts.enforce.test": policyText("enforce", ["mx.good.test"]),
  "mta-sts.testing.test": policyText("testing", ["mx.good.test"]),
  "mta-sts.selfsigned.test": policyText("enforce", ["mx.selfsigned.test"]),
});

/** The text of a message: a subject to find it by and a body line that must never leave in a DSN. */
const message = (subject: string, extraHeaders = "") =>
  `Subject: ${subject}\r\n${extraHeaders}\r\nsecret body of ${subject}\r\n`;

/**
 * Submit over SMTP; returns the queue id. With `requireTls`: over STARTTLS,
 * REQUIRETLS (then `requireTls.mailParams`) on MAIL FROM; without: no TLS, no REQUIRETLS.
 */
async function submitSmtp(
  world: World,
  from: string,
  to: string,
  text: string,
  requireTls?: { mailParams: string },
): Promise<string> {
  const talk = await SmtpTalk.open(world.relay.smtpPort);
  try {
    await talk.reply();
    await talk.command("EHLO client.test");
    let mailFrom = `MAIL FROM:<${from}>`;
    if (requireTls) {
      assert.match(await talk.startTls(), /^220 /);
      assert.match(await talk.command("EHLO client.test"), /^250[ -]REQUIRETLS$/m);
      mailFrom += ` REQUIRETLS${requireTls.mailParams}`;
    }
    assert.match(await talk.command(mailFrom), /^250 /);
    assert.match(await talk.command(`RCPT TO:<${to}>`), /^250 /);
    assert.match(await talk.command("DATA"), /^354 /);
    const done = await talk.command(`${text}.`);
    const id = /^250 .*queued as (\S+)/.exec(done)?.[1];
    assert.ok(id, done);
    return id;
  } finally {
    talk.close();
  }
}

const submitRequireTls = (world: World, from: string, to: string, text: string, mailParams = "") =>
  submitSmtp(world, from, to, text, { mailParams });
const submitPlain = (world: World, from: string, to: string, text: string) => submitSmtp(world, from, to, text);

async function sendHttp(world: World, body: Record<string, unknown>): Promise<string> {
  const sent = await world.api("POST", "/v1/messages", body);
  assert.equal(sent.status, 202, JSON.stringify(sent.json));
  return sent.json.id;
}

/** The DSN that reports on `subject` (its headers come back in it). */
async function dsnAbout(world: World, subject: string): Promise<Received> {
  const [dsn] =
    (await world.destination.waitFor((all) =>
      all.some((m) => m.mailFrom === "" && m.data.includes(`Subject: ${subject}`))
    )).filter(
      (m) => m.mailFrom === "" && m.data.includes(`Subject: ${subject}`),
    );
  return dsn!;
}

/** Headers only (RFC 8689 5): the original's body is not in the report. */
function assertHeadersOnly(dsn: Received, subject: string): void {
  assert.match(dsn.data, /Content-Type: text\/rfc822-headers/);
  assert.doesNotMatch(dsn.data, /Content-Type: message\/rfc822/);
  assert.equal(dsn.data.includes(`secret body of ${subject}`), false, dsn.data);
}

/** No session ever started a transaction for this sender: nothing was sent, in clear or otherwise. */
const noMailFrom = (world: World, sender: string) =>
  world.destination.sessions.every((s) => !s.commands.some((c) => c.toLowerCase().startsWith(`mail from:<${sender}>`)));

describe("REQUIRETLS: a destination with a verified certificate that advertises REQUIRETLS", () => {
  const world = worldForTests(() => ({
    destination: { starttls: sts.pki.leaf(["mx.good.test"]), requireTls: true },
    zone: {
      ...mxDomainZone("sender.test", "mx.good.test", false),
      ...mxDomainZone("enforce.test", "mx.good.test", true),
      ...mxDomainZone("testing.test", "mx.good.test", true),
      ...mxDomainZone("nopolicy.test", "mx.good.test", false),
    },
    env: sts.relayEnv(),
  }));

  it("REQUIRETLS on MAIL FROM in plaintext: 530 5.7.10, and EHLO does not offer it there", SAFETY, async () => {
    const talk = await SmtpTalk.open(world().relay.smtpPort);
    try {
      await talk.reply();
      const ehlo = await talk.command("EHLO client.test");
      assert.match(ehlo, /STARTTLS/);
      assert.doesNotMatch(ehlo, /REQUIRETLS/);
      assert.match(await talk.command("MAIL FROM:<a@sender.test> REQUIRETLS"), /^530 5\.7\.10 /);
      // The transaction never started: a plain MAIL FROM is still accepted.
      assert.match(await talk.command("MAIL FROM:<a@sender.test>"), /^250 /);
    } finally {
      talk.close();
    }
  });

  it("after STARTTLS: EHLO offers REQUIRETLS and MAIL FROM takes it; a value is refused", SAFETY, async () => {
    const talk = await SmtpTalk.open(world().relay.smtpPort);
    try {
      await talk.reply();
      await talk.command("EHLO client.test");
      assert.match(await talk.startTls(), /^220 /);
      assert.match(await talk.command("EHLO client.test"), /^250[ -]REQUIRETLS$/m);
      assert.match(await talk.command("MAIL FROM:<a@sender.test> REQUIRETLS=YES"), /^501 5\.5\.4 /);
      assert.match(await talk.command("MAIL FROM:<a@sender.test> REQUIRETLS"), /^250 /);
    } finally {
      talk.close();
    }
  });

  it("to an MTA-STS enforce domain: delivered over verified TLS with REQUIRETLS on MAIL FROM", SAFETY, async () => {
    const id = await submitRequireTls(world(), "a@sender.test", "user@enforce.test", message("rtls enforce"));
    const received = await world().waitForEvent((e) => e.type === "received" && e.message_id === id);
    assert.equal(received.require_tls, true, JSON.stringify(received));
    const delivered = await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    assert.equal(delivered.require_tls, true);
    assert.match(delivered.tls?.version ?? "", /^TLSv1\.[23]$/);
    const got = world().destination.messages.find((m) => m.data.includes("Subject: rtls enforce"));
    assert.ok(got);
    assert.equal(got.tls, true);
    assert.ok(got.mailParams.includes("REQUIRETLS"), JSON.stringify(got.mailParams));
  });

  it("a testing policy that lists the MX validates it too (RFC 8461 4.1)", SAFETY, async () => {
    const id = await submitRequireTls(world(), "a@sender.test", "user@testing.test", message("rtls testing"));
    await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    const got = world().destination.messages.find((m) => m.data.includes("Subject: rtls testing"));
    assert.ok(got?.mailParams.includes("REQUIRETLS"));
  });

  it("mail without REQUIRETLS to the same domain goes without the parameter", SAFETY, async () => {
    const id = await submitPlain(world(), "a@sender.test", "user@enforce.test", message("no rtls enforce"));
    const received = await world().waitForEvent((e) => e.type === "received" && e.message_id === id);
    assert.equal(received.require_tls, undefined);
    await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    const got = world().destination.messages.find((m) => m.data.includes("Subject: no rtls enforce"));
    assert.equal(got?.mailParams.includes("REQUIRETLS"), false);
  });

  it(
    "no MTA-STS policy to validate the MX: bounced 5.7.10, never sent; the DSN returns headers only",
    SAFETY,
    async () => {
      const id = await submitRequireTls(
        world(),
        "a@sender.test",
        "user@nopolicy.test",
        message("rtls nopolicy"),
        " RET=FULL",
      );
      const bounced = await world().waitForEvent((e) => e.type === "bounced" && e.message_id === id);
      assert.match(bounced.reply, /^550 5\.7\.10 REQUIRETLS: /, JSON.stringify(bounced));
      assert.equal(bounced.category, "policy-related");
      const dsn = await dsnAbout(world(), "rtls nopolicy");
      assert.deepEqual(dsn.recipients, ["a@sender.test"]);
      assert.match(dsn.data, /^Status: 5\.7\.10$/m);
      assertHeadersOnly(dsn, "rtls nopolicy");
      // RFC 8689 5: the bounce is not held back because sender.test's MX cannot meet REQUIRETLS; it goes without it.
      assert.equal(dsn.mailParams.includes("REQUIRETLS"), false);
      assert.equal(
        world().destination.messages.some((m) => m.mailFrom === "a@sender.test" && m.data.includes("rtls nopolicy")),
        false,
      );
    },
  );

  it(
    "a DSN about REQUIRETLS mail goes with REQUIRETLS where the sender's MX meets it, headers only despite RET=FULL",
    SAFETY,
    async () => {
      const id = await submitRequireTls(
        world(),
        "a@enforce.test",
        "nouser@enforce.test",
        message("rtls dsn"),
        " RET=FULL",
      );
      await world().waitForEvent((e) => e.type === "bounced" && e.message_id === id);
      const dsn = await dsnAbout(world(), "rtls dsn");
      assert.deepEqual(dsn.recipients, ["a@enforce.test"]);
      assert.match(dsn.data, /^Status: 5\.1\.1$/m);
      assert.ok(dsn.mailParams.includes("REQUIRETLS"), JSON.stringify(dsn.mailParams));
      assertHeadersOnly(dsn, "rtls dsn");
    },
  );

  it("HTTP require_tls: true is REQUIRETLS: delivered with it, or bounced where it cannot be met", SAFETY, async () => {
    const ok = await sendHttp(world(), {
      mail_from: "a@sender.test",
      rcpt_to: ["user@enforce.test"],
      raw: message("http rtls ok"),
      require_tls: true,
    });
    assert.equal((await world().waitForEvent((e) => e.type === "received" && e.message_id === ok)).require_tls, true);
    await world().waitForEvent((e) => e.type === "delivered" && e.message_id === ok);
    assert.ok(
      world().destination.messages.find((m) => m.data.includes("Subject: http rtls ok"))?.mailParams.includes(
        "REQUIRETLS",
      ),
    );
    const view = await world().api("GET", `/v1/messages/${ok}`);
    assert.equal(view.json.require_tls, true);

    const refused = await sendHttp(world(), {
      from: "a@sender.test",
      to: ["user@nopolicy.test"],
      subject: "http rtls nopolicy",
      text: "secret body of http rtls nopolicy",
      require_tls: true,
    });
    const bounced = await world().waitForEvent((e) => e.type === "bounced" && e.message_id === refused);
    assert.match(bounced.reply, /^550 5\.7\.10 /);
    assertHeadersOnly(await dsnAbout(world(), "http rtls nopolicy"), "http rtls nopolicy");
  });

  it("HTTP require_tls must be a boolean", SAFETY, async () => {
    const sent = await world().api("POST", "/v1/messages", {
      mail_from: "a@sender.test",
      rcpt_to: ["user@enforce.test"],
      raw: message("x"),
      require_tls: "yes",
    });
    assert.equal(sent.status, 422);
    assert.ok(sent.json.errors.some((e: { field: string }) => e.field === "require_tls"), JSON.stringify(sent.json));
  });

  it("the OpenAPI document describes require_tls on both forms", SAFETY, async () => {
    const response = await fetch(world().relay.url("/openapi.json"));
    const doc = (await response.json()) as {
      components: { schemas: Record<string, { properties: Record<string, { type?: string }> }> };
    };
    for (const name of ["RawMessage", "StructuredMessage"]) {
      assert.equal(doc.components.schemas[name]?.properties.require_tls?.type, "boolean", name);
    }
  });
});

describe("REQUIRETLS: a destination with a verified certificate that does not advertise REQUIRETLS", () => {
  const world = worldForTests(() => ({
    destination: { starttls: sts.pki.leaf(["mx.good.test"]) },
    zone: {
      ...mxDomainZone("sender.test", "mx.good.test", false),
      ...mxDomainZone("enforce.test", "mx.good.test", true),
    },
    env: sts.relayEnv(),
  }));

  it(
    "bounced 5.7.30 after STARTTLS and EHLO, with a QUIT and no MAIL; the DSN returns headers only",
    SAFETY,
    async () => {
      const id = await submitRequireTls(world(), "a@sender.test", "user@enforce.test", message("rtls unsupported"));
      const bounced = await world().waitForEvent((e) => e.type === "bounced" && e.message_id === id);
      assert.match(
        bounced.reply,
        /^550 5\.7\.30 REQUIRETLS: mx\.good\.test does not advertise REQUIRETLS/,
        JSON.stringify(bounced),
      );
      const dsn = await dsnAbout(world(), "rtls unsupported");
      assert.match(dsn.data, /^Status: 5\.7\.30$/m);
      assertHeadersOnly(dsn, "rtls unsupported");
      const checked = world().destination.sessions.filter((s) =>
        s.tls && s.commands.includes("QUIT") && !s.commands.some((c) => /^MAIL /i.test(c))
      );
      assert.ok(checked.length > 0, JSON.stringify(world().destination.sessions));
      assert.ok(noMailFrom(world(), "a@sender.test"), JSON.stringify(world().destination.sessions));
    },
  );
});

describe("REQUIRETLS and TLS-Required: No: an MTA-STS enforce domain whose MX has a self-signed certificate", () => {
  const world = worldForTests(() => ({
    destination: { starttls: sts.pki.leaf(["mx.selfsigned.test"], { selfSigned: true }), requireTls: true },
    zone: {
      ...mxDomainZone("sender.test", "mx.sender.test", false),
      ...mxDomainZone("selfsigned.test", "mx.selfsigned.test", true),
    },
    env: sts.relayEnv(),
  }));

  it("REQUIRETLS: bounced 5.7.10, never sent", SAFETY, async () => {
    const id = await submitRequireTls(world(), "a@sender.test", "user@selfsigned.test", message("rtls selfsigned"));
    const bounced = await world().waitForEvent((e) => e.type === "bounced" && e.message_id === id);
    assert.match(
      bounced.reply,
      /^550 5\.7\.10 REQUIRETLS: no verified TLS with mx\.selfsigned\.test: .*certificate/i,
      JSON.stringify(bounced),
    );
    assertHeadersOnly(await dsnAbout(world(), "rtls selfsigned"), "rtls selfsigned");
    assert.ok(noMailFrom(world(), "a@sender.test"));
  });

  it("without a tag the policy holds: deferred 4.7.5, not delivered", SAFETY, async () => {
    const id = await submitPlain(world(), "b@sender.test", "user@selfsigned.test", message("untagged selfsigned"));
    const deferred = await world().waitForEvent((e) => e.type === "deferred" && e.message_id === id);
    assert.match(deferred.reply, /^451 4\.7\.5 /);
    assert.ok(noMailFrom(world(), "b@sender.test"));
  });

  it("TLS-Required: No: delivered anyway, over opportunistic TLS (RFC 8689 4.2.2)", SAFETY, async () => {
    const id = await submitPlain(
      world(),
      "c@sender.test",
      "user@selfsigned.test",
      message("tls optional", "TLS-Required: No\r\n"),
    );
    const delivered = await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
    assert.match(delivered.tls?.version ?? "", /^TLSv1\.[23]$/);
    const got = world().destination.messages.find((m) => m.data.includes("Subject: tls optional"));
    assert.equal(got?.tls, true);
    assert.match(got?.data ?? "", /^TLS-Required: No$/m);
  });

  it("TLS-Required: No through the HTTP API's headers: delivered anyway", SAFETY, async () => {
    const id = await sendHttp(world(), {
      from: "d@sender.test",
      to: ["user@selfsigned.test"],
      subject: "http tls optional",
      text: "hello",
      headers: { "TLS-Required": "No" },
    });
    await world().waitForEvent((e) => e.type === "delivered" && e.message_id === id);
  });

  it(
    "REQUIRETLS with TLS-Required: No: the header field is ignored, the message bounces (RFC 8689 4.1)",
    SAFETY,
    async () => {
      const id = await submitRequireTls(
        world(),
        "e@sender.test",
        "user@selfsigned.test",
        message("rtls wins", "TLS-Required: No\r\n"),
      );
      const bounced = await world().waitForEvent((e) => e.type === "bounced" && e.message_id === id);
      assert.match(bounced.reply, /^550 5\.7\.10 /);
      assert.ok(noMailFrom(world(), "e@sender.test"));
    },
  );
});
