import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { systemClock } from "../../src/core/clock.ts";
import { type Reply, reply } from "../../src/core/reply.ts";
import { type BouncedMessage, dsnMessage } from "../../src/delivery/bounce.ts";
import { classifyReply } from "../../src/delivery/classify.ts";
import { Destination } from "../../src/delivery/destination.ts";
import type { StsResult } from "../../src/delivery/mta-sts/index.ts";
import type { PlannerDeps } from "../../src/delivery/planner.ts";
import { requireTlsFor, requireTlsKey } from "../../src/delivery/requiretls.ts";
import type { RouteResult, TargetHost } from "../../src/delivery/route.ts";
import type { Plan } from "../../src/delivery/plan.ts";
import { SmtpChannel } from "../../src/delivery/smtp-channel.ts";
import { tlsRuleFor } from "../../src/delivery/tls-rule.ts";
import { DestinationUnreachable, type Payload, type RecipientResult, type Work } from "../../src/delivery/work.ts";
import { headerSectionEnd } from "../../src/core/header-section.ts";
import { tlsTagOf } from "../../src/ingress/tls-tag.ts";
import { messageInserts } from "../../src/queue/message-rows.ts";
import type { Envelope, SmtpClientSession } from "../../src/smtp/client/index.ts";
import { stsPlanner } from "../helpers/planner.ts";

/** REQUIRETLS and "TLS-Required: No" (RFC 8689) from receipt to delivery decisions, without a network. */

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (body: Uint8Array) => new TextDecoder("latin1").decode(body);

describe("the tag a message gets at receipt (RFC 8689 4.1)", () => {
  it("REQUIRETLS tags it, whatever TLS-Required says", () => {
    assert.equal(tlsTagOf(true, bytes("Subject: x\r\n\r\nbody\r\n")), "requiretls");
    assert.equal(tlsTagOf(true, bytes("TLS-Required: No\r\nSubject: x\r\n\r\nbody\r\n")), "requiretls");
  });

  it("one TLS-Required: No header field tags it optional: case, FWS and folding as RFC 5322 allows", () => {
    for (const head of ["TLS-Required: No", "tls-required:no", "TLS-Required:\r\n  NO", "TLS-Required :  No  "]) {
      assert.equal(tlsTagOf(false, bytes(`Subject: x\r\n${head}\r\n\r\nbody\r\n`)), "optional", JSON.stringify(head));
    }
  });

  it("anything else leaves it untagged: another value, two fields, or the text in the body", () => {
    const cases = [
      "Subject: x\r\n\r\nbody\r\n",
      "TLS-Required: Yes\r\n\r\nbody\r\n",
      "TLS-Required: No\r\nTLS-Required: No\r\n\r\nbody\r\n",
      "X-TLS-Required: No\r\n\r\nbody\r\n",
      "Subject: x\r\n\r\nTLS-Required: No\r\n",
    ];
    for (const message of cases) assert.equal(tlsTagOf(false, bytes(message)), undefined, JSON.stringify(message));
  });

  it("reads the field as the unfolded header section's lines, whatever the line ends and spacing", () => {
    const byUnfolding = (message: Uint8Array) => {
      const head = text(message.subarray(0, headerSectionEnd(message)));
      // A line break before a blank only folds; the name is what comes before the colon, blanks left out.
      const lines = head.replace(/\r?\n(?=[ \t])/g, "").split(/\r?\n/);
      const named = (line: string) =>
        line.slice(0, line.indexOf(":")).replace(/[ \t]/g, "").toLowerCase() === "tls-required";
      const fields = lines.filter((line) => line.includes(":") && named(line)).map((line) =>
        line.slice(line.indexOf(":") + 1).trim()
      );
      return fields.length === 1 && /^No$/i.test(fields[0]!) ? "optional" : undefined;
    };
    for (
      const head of [
        "Subject: x\nTLS-Required: No",
        "Subject: x\rtls-required:No",
        "Subject: x\r\n TLS-Required: No",
        "TLS-Required: No\nTLS-Required: No",
      ]
    ) {
      const message = bytes(`${head}\r\n\r\nbody\r\n`);
      assert.equal(tlsTagOf(false, message), byUnfolding(message), JSON.stringify(head));
    }
    let seed = 7;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    const pick = (list: string[]) => list[next(list.length)]!;
    let optional = 0;
    for (let i = 0; i < 20_000; i++) {
      let head = "";
      for (let k = next(3); k >= 0; k--) {
        head += pick(["", "", "X-", " ", "Subject: x\r\n"]) +
          pick(["TLS-Required", "tls-REQUIRED", "TLS-Req\r\n uired", "TLS_Required"]);
        head += pick(["", " ", "\t", "\r\n "]) + pick([":", ":", ""]) + pick(["", " ", "\r\n\t"]) +
          pick(["No", "no", "NO ", "Yes", "No x", "N\r\n o"]);
        head += pick(["\r\n", "\r\n", "\n", "\r"]);
      }
      const message = bytes(`${head}\r\n\r\nTLS-Required: No\r\n`);
      const expected = byUnfolding(message);
      if (expected === "optional") optional++;
      assert.equal(tlsTagOf(false, message), expected, JSON.stringify(head));
    }
    assert.ok(optional > 100, `only ${optional} of the cases are tagged`);
  });
});

describe("the TLS rule delivery follows (RFC 8689 4.2)", () => {
  it("REQUIRETLS binds mail with a return path; a bounce follows the recipient's policy (5)", () => {
    assert.equal(tlsRuleFor("requiretls", "a@b.test"), "requiretls");
    assert.equal(tlsRuleFor("requiretls", ""), "recipient-policy");
    assert.equal(tlsRuleFor("optional", "a@b.test"), "opportunistic");
    assert.equal(tlsRuleFor("optional", ""), "opportunistic");
    assert.equal(tlsRuleFor(undefined, "a@b.test"), "recipient-policy");
  });
});

const enforce = (mx: string[]): StsResult => ({
  mode: "enforce",
  id: "1",
  policy: { version: "STSv1", mode: "enforce", mx, maxAge: 86400 },
});
const testing = (mx: string[]): StsResult => ({
  mode: "testing",
  id: "2",
  policy: { version: "STSv1", mode: "testing", mx, maxAge: 86400 },
});
const host = (name: string, implicit = false): TargetHost => ({
  name,
  addresses: ["127.0.0.1"],
  port: 25,
  ...(implicit ? { implicit } : {}),
});

describe("which hosts REQUIRETLS accepts (RFC 8689 4.2.1)", () => {
  it("an MX host only when an MTA-STS policy in force lists it, then with a certificate verified for its name", () => {
    assert.deepEqual(requireTlsFor({ from: "mx", sts: enforce(["mx.a.test"]) })(host("MX.A.test.")), {
      mode: "required",
      servername: "mx.a.test",
    });
    assert.deepEqual(requireTlsFor({ from: "mx", sts: testing(["*.a.test"]) })(host("mx.a.test")), {
      mode: "required",
      servername: "mx.a.test",
    });
    assert.equal(requireTlsFor({ from: "mx", sts: enforce(["mx.a.test"]) })(host("mx.b.test")).mode, "refuse");
    const none = requireTlsFor({ from: "mx", sts: { mode: "none" } })(host("mx.a.test"));
    assert.equal(none.mode, "refuse");
    assert.match(none.mode === "refuse" ? none.reason : "", /no MTA-STS policy validates MX host mx\.a\.test/);
  });

  it("a name that came from no MX record (static route, the domain as its own MX) needs no policy, only verified TLS", () => {
    assert.deepEqual(requireTlsFor({ from: "static-route" })(host("smarthost.test")), {
      mode: "required",
      servername: "smarthost.test",
    });
    assert.deepEqual(requireTlsFor({ from: "implicit-mx" })(host("a.test", true)), {
      mode: "required",
      servername: "a.test",
    });
  });

  it("the key names what decides the hosts: mx patterns, not the policy's mode or id", () => {
    assert.equal(requireTlsKey({ from: "mx", sts: enforce(["b.test", "a.test"]) }), "requiretls:mx:a.test,b.test");
    assert.equal(requireTlsKey({ from: "mx", sts: testing(["a.test", "b.test"]) }), "requiretls:mx:a.test,b.test");
    assert.equal(requireTlsKey({ from: "mx", sts: { mode: "none" } }), "requiretls:mx:");
    assert.equal(requireTlsKey({ from: "static-route" }), "requiretls:static-route");
  });
});

const MX: RouteResult = { kind: "hosts", hosts: [host("mx.shared.test")] };

const planner = (policies: Record<string, StsResult>, extra: Partial<PlannerDeps> = {}) =>
  stsPlanner(MX, policies, extra);

const destination = (plan: Plan) => {
  assert.equal(plan.kind, "destination");
  return plan as Extract<Plan, { kind: "destination" }>;
};

describe("planner: REQUIRETLS mail never shares a destination with other mail", () => {
  it("its key differs from the policy's and the plain MX site's, and agrees across domains with the same mx patterns", async () => {
    const { plan } = planner({ "a.test": enforce(["mx.shared.test"]), "b.test": testing(["mx.shared.test"]) });
    const keys = new Set([
      destination(await plan("a.test", "recipient-policy")).key,
      destination(await plan("a.test", "requiretls")).key,
      destination(await plan("plain.test", "recipient-policy")).key,
    ]);
    assert.equal(keys.size, 3);
    assert.equal(destination(await plan("a.test", "requiretls")).key, "mx.shared.test:25|requiretls:mx:mx.shared.test");
    assert.equal(
      destination(await plan("b.test", "requiretls")).key,
      destination(await plan("a.test", "requiretls")).key,
    );
  });

  it("no MTA-STS policy: every host refused, so the transport bounces 550 5.7.10 without connecting", async () => {
    const { plan } = planner({});
    const target = destination(await plan("nopolicy.test", "requiretls"));
    assert.notEqual(target.key, destination(await plan("nopolicy.test", "recipient-policy")).key);
    await assert.rejects(target.transport().open(), (error: unknown) => {
      assert.ok(error instanceof DestinationUnreachable);
      assert.equal(error.reply.code, 550);
      assert.equal(error.reply.enhanced, "5.7.10");
      assert.deepEqual(error.classification, { disposition: "bounced", category: "policy-related" });
      return true;
    });
  });

  it("with MTA-STS off, an MX host cannot be validated either", async () => {
    const { plan } = planner({}, { mtaSts: undefined });
    await assert.rejects(destination(await plan("a.test", "requiretls")).transport().open(), (error: unknown) => {
      return error instanceof DestinationUnreachable && error.classification.disposition === "bounced";
    });
  });

  it("a policy that cannot be read now defers (451 4.7.10) rather than bounces", async () => {
    const { plan } = planner({ "flaky.test": { mode: "none", problem: "policy fetch failed: timeout" } });
    const planned = await plan("flaky.test", "requiretls");
    assert.equal(planned.kind, "defer");
    const [result] = (planned as Extract<Plan, { results: unknown }>).results(["u@flaky.test"]);
    assert.equal(result?.reply.enhanced, "4.7.10");
    assert.equal(result?.disposition, "deferred");
  });

  it("a static route and the domain as its own MX: no policy lookup, a key of their own", async () => {
    const routed = planner({}, { staticRoute: (d) => d === "routed.test" });
    assert.equal(
      destination(await routed.plan("routed.test", "requiretls")).key,
      "mx.shared.test:25|requiretls:static-route",
    );
    assert.deepEqual(routed.looked, []);
    const implicit = planner({}, { route: async () => ({ kind: "hosts", hosts: [host("self.test", true)] }) });
    assert.equal(
      destination(await implicit.plan("self.test", "requiretls")).key,
      "self.test:25|requiretls:implicit-mx",
    );
    assert.deepEqual(implicit.looked, []);
  });

  it("TLS-Required: No: the recipient's policy is not looked up; the plain MX site's destination", async () => {
    const { plan, looked } = planner({ "strict.test": enforce(["mx.other.test"]) });
    assert.equal(destination(await plan("strict.test", "opportunistic")).key, "mx.shared.test:25");
    assert.deepEqual(looked, []);
  });

  it("the sandbox simulates as ever", async () => {
    const { plan } = planner({}, { sandbox: true });
    assert.equal(destination(await plan("a.test", "requiretls")).key, "sandbox");
  });
});

describe("classification of the REQUIRETLS codes", () => {
  it("X.7.10 and X.7.30 are policy-related whatever the text says", () => {
    assert.deepEqual(classifyReply(reply(550, "5.7.30", "REQUIRETLS support required; blocked")), {
      disposition: "bounced",
      category: "policy-related",
    });
    assert.deepEqual(classifyReply(reply(530, "5.7.10", "Encryption needed: too many messages")), {
      disposition: "bounced",
      category: "policy-related",
    });
  });
});

/** A client session that records what it is asked to send. */
function fakeSession(extensions: string[]) {
  const sent: Envelope[] = [];
  const session = {
    usable: true,
    tls: { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
    extensions: new Map(extensions.map((e) => [e, ""])),
    async send(envelope: Envelope) {
      sent.push(envelope);
      const ok: Reply = reply(250, "2.0.0", "ok");
      return { mail: ok, recipients: envelope.recipients.map((address) => ({ address, reply: ok })), data: ok };
    },
    async quit() {},
    close() {},
  } as unknown as SmtpClientSession;
  return { session, sent };
}

const payload = (over: Partial<Payload> = {}): Payload => ({
  messageId: "m1",
  mailFrom: "a@b.test",
  recipients: ["u@c.test"],
  body: bytes("Subject: x\r\n\r\nbody\r\n"),
  ...over,
});

describe("SmtpChannel and REQUIRETLS", () => {
  it("REQUIRETLS goes on MAIL FROM when the message asks for it and the session meets it", async () => {
    const { session, sent } = fakeSession(["REQUIRETLS"]);
    const channel = new SmtpChannel(session, "mx.c.test", 100, true);
    await channel.send(payload({ requireTls: true }));
    await channel.send(payload());
    assert.deepEqual(sent.map((e) => e.mailParams), [["REQUIRETLS"], undefined]);
  });

  it("REQUIRETLS mail with a return path is never sent over a session that does not meet it", async () => {
    const { session, sent } = fakeSession([]);
    const [result] = await new SmtpChannel(session, "mx.c.test", 100, false).send(payload({ requireTls: true }));
    assert.deepEqual(sent, []);
    assert.equal(result?.reply.enhanced, "4.7.10");
    assert.equal(result?.disposition, "deferred");
  });

  it("a bounce of REQUIRETLS mail goes without it over such a session (RFC 8689 5)", async () => {
    const { session, sent } = fakeSession([]);
    const [result] = await new SmtpChannel(session, "mx.c.test", 100, false).send(
      payload({ mailFrom: "", requireTls: true }),
    );
    assert.equal(result?.disposition, "delivered");
    assert.deepEqual(sent.map((e) => e.mailParams), [undefined]);
  });
});

describe("DSNs about tagged mail (RFC 8689 5, 6)", () => {
  const original: BouncedMessage = {
    mailFrom: "a@b.test",
    createdAt: 0,
    body: bytes("Subject: hello\r\n\r\nsecret body\r\n"),
    dsnRet: "FULL",
    dsnEnvid: null,
  };
  const failed = [{
    address: "u@c.test",
    kind: "failure" as const,
    reply: reply(550, "5.7.30", "REQUIRETLS support required"),
  }];

  it("about REQUIRETLS mail: headers only despite RET=FULL, and the report is tagged REQUIRETLS", () => {
    const dsn = dsnMessage({ ...original, tlsTag: "requiretls" }, failed, "relay.test", 1);
    assert.ok(dsn);
    assert.equal(dsn.tlsTag, "requiretls");
    assert.match(text(dsn.body), /Content-Type: text\/rfc822-headers/);
    assert.equal(text(dsn.body).includes("secret body"), false);
  });

  it("about TLS-Required: No mail: tagged optional and carrying the field", () => {
    const dsn = dsnMessage({ ...original, tlsTag: "optional" }, failed, "relay.test", 1);
    assert.equal(dsn?.tlsTag, "optional");
    assert.match(text(dsn!.body), /^TLS-Required: No\r$/m);
    assert.ok(text(dsn!.body).includes("secret body"), "RET=FULL is honoured");
  });

  it("about untagged mail: as before", () => {
    const dsn = dsnMessage(original, failed, "relay.test", 1);
    assert.equal(dsn?.tlsTag, undefined);
    assert.doesNotMatch(text(dsn!.body), /^TLS-Required:/m);
  });
});

describe("the received event of REQUIRETLS mail", () => {
  it("says require_tls: true; other mail says nothing of it", () => {
    const base = {
      mailFrom: "a@b.test",
      recipients: [{ address: "u@c.test", domain: "c.test" }],
      body: bytes("x"),
      source: "smtp" as const,
    };
    const inSpool = { segment: 1, offset: 0, length: 1 };
    const statements = messageInserts(
      [{ id: "m1", message: { ...base, tlsTag: "requiretls" } }, { id: "m2", message: base }],
      [inSpool, inSpool],
      0,
    );
    const events = statements.find((s) => typeof s !== "string" && s.sql.startsWith("INSERT INTO events"));
    const data =
      ((events as { args: unknown[] }).args.filter((a) => typeof a === "string" && a.startsWith("{")) as string[]).map((
        d,
      ) => JSON.parse(d));
    assert.deepEqual(data.map((d) => d.require_tls), [true, undefined]);
  });
});

describe("a destination where no host meets REQUIRETLS", () => {
  it("bounces each message as it comes, without suspending the destination (nothing to back off from)", async () => {
    const refusal = reply(550, "5.7.10", "REQUIRETLS: no MTA-STS policy validates MX host mx.c.test");
    const reports: RecipientResult[][] = [];
    let opened = 0;
    const target = new Destination("key", {
      transport: {
        open: async () => {
          opened++;
          throw new DestinationUnreachable(refusal, classifyReply(refusal), "mx.c.test");
        },
      },
      clock: systemClock,
      limits: { maxConnections: 1, maxMessagesPerConnection: 10, idleMs: 10 },
      loadPayload: async () => undefined,
      report: (_work, results) => reports.push(results),
      backoff: () => 3_600_000,
      postpone: () => assert.fail("nothing is paced here"),
      onError: (error) => assert.fail(String(error)),
    });
    const work = (id: string): Work => ({
      messageId: id,
      mailFrom: "a@b.test",
      claims: [{ address: `u@c.test` } as Work["claims"][number]],
    });
    target.enqueue(work("m1"));
    while (reports.length < 1) await new Promise((r) => setTimeout(r, 1));
    target.enqueue(work("m2"));
    while (reports.length < 2) await new Promise((r) => setTimeout(r, 1));
    assert.equal(opened, 2);
    assert.deepEqual(reports.map((r) => [r[0]?.reply.enhanced, r[0]?.disposition]), [["5.7.10", "bounced"], [
      "5.7.10",
      "bounced",
    ]]);
    assert.equal(target.suspendedUntil, 0);
  });
});
